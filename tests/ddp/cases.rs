//! The cases: each launches ranks (`mpirun -np 2`, or one process) of `worker.rs` and checks
//! what they wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fulmen::serde_json::{self, Value};

use crate::worker::TRAIN;

pub type Case = fn();

pub const ALL: &[(&str, Case)] = &[
    ("two_ranks_of_16_reach_the_weights_of_one_rank_of_32_on_disjoint_shards", two_ranks_of_16_reach_the_weights_of_one_rank_of_32_on_disjoint_shards),
    ("a_checkpoint_resumes_on_another_number_of_ranks", a_checkpoint_resumes_on_another_number_of_ranks),
    ("a_mid_epoch_checkpoint_resumes_on_another_number_of_ranks", a_mid_epoch_checkpoint_resumes_on_another_number_of_ranks),
    ("a_failing_rank_stops_the_other_with_its_error", a_failing_rank_stops_the_other_with_its_error),
    ("a_killed_rank_is_named_by_the_other_within_the_timeout", a_killed_rank_is_named_by_the_other_within_the_timeout),
    ("the_tutorial_trains_under_mpirun", the_tutorial_trains_under_mpirun),
    ("nccl_asked_for_where_it_cannot_run_stops_every_rank_at_start", nccl_asked_for_where_it_cannot_run_stops_every_rank_at_start),
];

/// How far weights trained as 2 ranks × 16 may be from 1 rank × 32 (see the first case).
const TOLERANCE: f32 = 1e-5;

/// A fresh folder for one run.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fulmen-ddp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a launch printed and how it ended.
struct Launch {
    code: Option<i32>,
    output: String,
}

/// Runs `command`, killing it (and failing) if it is still running after `limit`: a hang is a
/// failure, never a stuck CI.
fn run(mut command: Command, limit: Duration) -> Launch {
    let out = temp(&format!("log-{}", Instant::now().elapsed().as_nanos()));
    let log = out.join("output.txt");
    let file = std::fs::File::create(&log).unwrap();
    let mut child =
        command.stdout(Stdio::from(file.try_clone().unwrap())).stderr(Stdio::from(file)).spawn().expect("the command starts (is Open MPI installed?)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Launch { code: status.code(), output: std::fs::read_to_string(&log).unwrap_or_default() }
}

/// `np` ranks of the worker (one process without mpirun when `np` is 1) writing to `out`.
fn launch(np: usize, out: &Path, options: &[&str], mpirun_flags: &[&str]) -> Launch {
    let exe = std::env::current_exe().unwrap();
    let mut command = if np == 1 {
        Command::new(&exe)
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string()]).args(mpirun_flags).arg(&exe);
        c
    };
    command.arg("worker").arg(out).args(options);
    run(command, Duration::from_secs(300))
}

fn rank(out: &Path, r: usize) -> Value {
    let path = out.join(format!("rank{r}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// A successful rank's result.
fn result(out: &Path, r: usize, launch: &Launch) -> Value {
    let v = rank(out, r);
    assert_eq!(v["ok"], true, "rank {r} failed: {}\n{}", v["error"], launch.output);
    v["result"].clone()
}

fn weights(result: &Value) -> Vec<f32> {
    result["weights"].as_array().unwrap().iter().map(|w| w.as_f64().unwrap() as f32).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn served(out: &Path, r: usize) -> Vec<usize> {
    rank(out, r)["served"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as usize).collect()
}

/// Folders under `dir` whose names start with `prefix`.
fn entries(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_or(Vec::new(), |d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(prefix)).collect());
    names.sort();
    names
}

/// 2 epochs of 10 steps. With SGD each step moves the weights by lr × the averaged gradient, so
/// a gradient summed instead of averaged, a shard seen twice or a rank training alone moves them
/// by about lr × |g| ≈ 1e-2 per step; what differs between 2 × 16 and 1 × 32 is only the order
/// of the f32 sums (16 + 16 rows, then the all-reduce's sum of 2, then × 1/2, which is exact),
/// a few ulps (1.2e-7 relative) of each gradient per step, which 20 steps of lr = 0.2 leave
/// far below 1e-5 on weights of size ~0.5.
fn two_ranks_of_16_reach_the_weights_of_one_rank_of_32_on_disjoint_shards() {
    let single = temp("single");
    let launched = launch(1, &single, &["batch=32", "loggers=1"], &[]);
    let one = result(&single, 0, &launched);
    let double = temp("double");
    let launched = launch(2, &double, &["batch=16", "loggers=1"], &[]);
    assert_eq!(launched.code, Some(0), "{}", launched.output);
    let (r0, r1) = (result(&double, 0, &launched), result(&double, 1, &launched));
    assert_eq!(weights(&r0), weights(&r1), "the replicas stay identical, bit for bit");
    let diff = max_diff(&weights(&r0), &weights(&one));
    eprintln!("[max |w(2×16) − w(1×32)| = {diff:e}]");
    assert!(diff < TOLERANCE, "2 ranks × 16 ended {diff} from 1 rank × 32");
    assert_eq!((r0["global_step"].as_u64(), one["global_step"].as_u64()), (Some(20), Some(20)), "10 steps an epoch either way");
    // Each epoch the ranks took disjoint halves of the shuffled rows, together all of them.
    let (s0, s1, s) = (served(&double, 0), served(&double, 1), served(&single, 0));
    assert_eq!((s0.len(), s1.len(), s.len()), (2 * TRAIN / 2, 2 * TRAIN / 2, 2 * TRAIN));
    for epoch in 0..2 {
        let half = TRAIN / 2;
        let (a, b) = (&s0[epoch * half..(epoch + 1) * half], &s1[epoch * half..(epoch + 1) * half]);
        let mut both: Vec<usize> = a.iter().chain(b).copied().collect();
        both.sort();
        assert_eq!(both, (0..TRAIN).collect::<Vec<_>>(), "epoch {epoch}: disjoint shards covering every row");
        // Dealt round-robin from the same order the single process used.
        let order = &s[epoch * TRAIN..(epoch + 1) * TRAIN];
        assert_eq!(a, order.iter().step_by(2).copied().collect::<Vec<_>>().as_slice(), "epoch {epoch}: rank 0 takes positions 0, 2, 4, ...");
    }
    // Logged values are reduced over both ranks (sync_dist): the same on each, and those of one process.
    let metric = |r: &Value, k: &str| r["metrics"][k].as_f64().unwrap_or_else(|| panic!("{k} in {}", r["metrics"]));
    for key in ["val_loss", "val_acc", "train_loss_epoch"] {
        assert_eq!(metric(&r0, key), metric(&r1, key), "{key} agrees across ranks");
        assert!((metric(&r0, key) - metric(&one, key)).abs() < 1e-5, "{key}: {} vs one process's {}", metric(&r0, key), metric(&one, key));
    }
    // Rank 0 alone wrote: one version folder, one set of checkpoints, one W&B run.
    let run = double.join("run");
    assert_eq!(entries(&run.join("lightning_logs"), "version_"), ["version_0"], "one version folder");
    assert_eq!(entries(&run.join("wandb"), "offline-run-").len(), 1, "one W&B run");
    let checkpoints = entries(&run.join("checkpoints"), "");
    assert_eq!(checkpoints, entries(&single.join("run/checkpoints"), ""), "the checkpoints of one run");
    assert_eq!(r0["best_model_path"], r1["best_model_path"], "every rank knows the best checkpoint");
    let rows = |dir: &Path| std::fs::read_to_string(dir.join("run/lightning_logs/version_0/metrics.csv")).unwrap().lines().count();
    assert_eq!(rows(&double), rows(&single), "the metrics of one run, written once");
}

/// Checkpoints count the samples of the epoch's order all ranks trained on, so a run written on
/// 2 ranks resumes on 1 and one written on 1 resumes on 2; the resumed runs end where a run
/// without interruption does, within the arithmetic tolerance of the first case.
fn a_checkpoint_resumes_on_another_number_of_ranks() {
    let straight = temp("straight");
    let launched = launch(1, &straight, &["batch=32", "epochs=3"], &[]);
    let reference = weights(&result(&straight, 0, &launched));
    for (first, then) in [(2, 1), (1, 2)] {
        let batch = |np: usize| format!("batch={}", 32 / np);
        let a = temp(&format!("from-{first}"));
        let launched = launch(first, &a, &[&batch(first), "epochs=2"], &[]);
        assert_eq!(launched.code, Some(0), "{}", launched.output);
        let last = a.join("run/checkpoints/last.ckpt");
        let b = temp(&format!("on-{then}"));
        let resume = format!("resume={}", last.display());
        let launched = launch(then, &b, &[&batch(then), "epochs=3", &resume], &[]);
        let resumed = result(&b, 0, &launched);
        assert_eq!(resumed["global_step"].as_u64(), Some(30), "one more epoch of 10 steps after the checkpoint's 20");
        assert_eq!(resumed["world_size"].as_u64(), Some(then as u64));
        let diff = max_diff(&weights(&resumed), &reference);
        assert!(diff < TOLERANCE, "{first} ranks then {then}: {diff} from the uninterrupted run");
    }
}

/// Mid-epoch: a run checkpoints after 4 steps, 128 of the epoch's samples whatever its number
/// of ranks; the resumed run's ranks skip their share of them (2 ranks: 64 each, 4 batches of
/// 16) and end where the uninterrupted run does.
fn a_mid_epoch_checkpoint_resumes_on_another_number_of_ranks() {
    let straight = temp("mid-straight");
    let launched = launch(1, &straight, &["batch=32", "epochs=2"], &[]);
    let reference = weights(&result(&straight, 0, &launched));
    for (first, then) in [(2, 1), (1, 2)] {
        let batch = |np: usize| format!("batch={}", 32 / np);
        let a = temp(&format!("mid-from-{first}"));
        let launched = launch(first, &a, &[&batch(first), "epochs=1", "every=4"], &[]);
        assert_eq!(launched.code, Some(0), "{}", launched.output);
        let checkpoint = a.join("run/checkpoints/step=4.ckpt");
        assert!(checkpoint.exists(), "{:?}", entries(&a.join("run/checkpoints"), ""));
        let b = temp(&format!("mid-on-{then}"));
        let resume = format!("resume={}", checkpoint.display());
        let launched = launch(then, &b, &[&batch(then), "epochs=2", &resume], &[]);
        let resumed = result(&b, 0, &launched);
        assert_eq!(resumed["global_step"].as_u64(), Some(20), "{first} ranks then {then}: 6 steps left in epoch 0, then 10");
        let diff = max_diff(&weights(&resumed), &reference);
        assert!(diff < TOLERANCE, "{first} ranks then {then}: {diff} from the uninterrupted run");
    }
}

/// A rank whose step fails tells the others, which stop at once with its error (not after the
/// 10-minute timeout they were given).
fn a_failing_rank_stops_the_other_with_its_error() {
    let out = temp("failing");
    let start = Instant::now();
    let launched = launch(2, &out, &["batch=16", "fail_at=3", "timeout=600"], &[]);
    assert_ne!(launched.code, Some(0), "mpirun reports the failure:\n{}", launched.output);
    let survivor = rank(&out, 0);
    let error = survivor["error"].as_str().unwrap_or_else(|| panic!("rank 0 stopped with an error: {survivor}"));
    assert!(error.contains("rank 1 failed") && error.contains("the sabotage callback failed on purpose"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(120), "it stopped long before its timeout");
}

/// A rank killed mid-epoch (SIGKILL) is named by the survivor, which exits non-zero. Under
/// `--enable-recovery` mpirun lets the survivor run on, so its own timeout and probe find the
/// dead rank; by default mpirun stops the survivor with SIGTERM a second later, and the
/// survivor names the rank that does not answer before it exits.
fn a_killed_rank_is_named_by_the_other_within_the_timeout() {
    for (flags, what) in [(&["--enable-recovery"][..], "recovery"), (&[][..], "default")] {
        let out = temp(&format!("killed-{what}"));
        let launched = launch(2, &out, &["batch=16", "kill_at=3", "timeout=5"], flags);
        let survivor = rank(&out, 0);
        assert_eq!(survivor["ok"], false, "{what}: rank 0 exits with an error:\n{}", launched.output);
        let error = survivor["error"].as_str().unwrap();
        assert!(error.contains("rank 1 did not answer"), "{what}: {error}");
        assert!(!out.join("rank1.json").exists(), "rank 1 died before writing anything");
        if what == "default" {
            assert_ne!(launched.code, Some(0), "mpirun reports the dead rank:\n{}", launched.output);
        }
    }
}

/// `examples/cifar.rs` on generated images, 2 ranks: every rank starts, rank 0 alone prints
/// the test table.
fn the_tutorial_trains_under_mpirun() {
    let example = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/cifar");
    assert!(example.exists(), "{} is built by `cargo test` (examples are compiled with the tests)", example.display());
    let dir = temp("tutorial");
    let mut command = Command::new("mpirun");
    command
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(&example)
        .args([
            "fit",
            "--data.synthetic",
            "true",
            "--trainer.fast_dev_run",
            "1",
            "--trainer.strategy",
            "ddp",
            "--trainer.accelerator",
            "cpu",
            "--trainer.default_root_dir",
        ])
        .arg(&dir)
        .current_dir(&dir);
    let launched = run(command, Duration::from_secs(300));
    assert_eq!(launched.code, Some(0), "{}", launched.output);
    for r in 0..2 {
        assert!(launched.output.contains(&format!("GLOBAL_RANK: {r}, MEMBER: {}/2", r + 1)), "{}", launched.output);
    }
    assert_eq!(launched.output.matches("Test metric").count(), 1, "one test table:\n{}", launched.output);
}

/// `process_group_backend = nccl` on CPU ranks: every rank stops before training, saying why
/// NCCL cannot run and what to set instead; unset, the same ranks all-reduce over MPI.
fn nccl_asked_for_where_it_cannot_run_stops_every_rank_at_start() {
    let out = temp("nccl-refused");
    let launched = launch(2, &out, &["batch=16", "backend=nccl"], &[]);
    assert_ne!(launched.code, Some(0), "{}", launched.output);
    let why = if cfg!(feature = "cuda") { "rank 0 does not train on a CUDA device" } else { "this build has no CUDA" };
    for r in 0..2 {
        let error = rank(&out, r)["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains(&format!("process_group_backend = nccl cannot run: {why}")) && error.contains("set mpi"), "rank {r}: {error}");
    }
    assert!(!out.join("run/checkpoints").exists(), "nothing was trained");
    let out = temp("nccl-unset");
    let launched = launch(2, &out, &["batch=16", "epochs=1"], &[]);
    result(&out, 0, &launched);
    assert!(launched.output.contains("gradients over mpi"), "{}", launched.output);
}
