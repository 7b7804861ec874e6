//! The loggers' output read back by the real clients: W&B's `wandb leet inspect` (wandb-core's
//! reader, the one `wandb sync` uses) and TensorBoard's EventAccumulator, through
//! tests/fixtures/readers/check_run.py.

use std::path::{Path, PathBuf};

use fulmen::loggers::wandb::{Record, read_records};
use fulmen::prelude::*;
use fulmen::serde_json::{self, Value, json};

use crate::probe::{PointsData, Probe, read_csv, temp_dir};
use crate::reference;
use crate::seed_cnn::{SeedCnn, SeedConfig};

/// The run folder `wandb/latest-run` points at.
fn latest_run(root: &Path) -> PathBuf {
    let link = root.join("wandb/latest-run");
    let target = std::fs::read_link(&link).expect("wandb/latest-run is a symlink");
    assert!(target.is_relative(), "latest-run points at {}", target.display());
    root.join("wandb").join(target)
}

fn decoded(run_dir: &Path) -> Vec<Record> {
    let id = run_dir.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_string();
    read_records(&run_dir.join(format!("run-{id}.wandb"))).unwrap().iter().map(|b| <Record as prost::Message>::decode(b.as_slice()).unwrap()).collect()
}

/// CSV rows as (global step, values without `epoch`/`step`).
fn csv_rows(version: &Path) -> Vec<(u64, serde_json::Map<String, Value>)> {
    let (header, rows) = read_csv(&version.join("metrics.csv"));
    let step = header.iter().position(|h| h == "step").unwrap();
    rows.iter()
        .map(|r| {
            let values =
                header.iter().zip(r).filter(|(h, v)| v.is_some() && *h != "step" && *h != "epoch").map(|(h, v)| (h.clone(), json!(v.unwrap()))).collect();
            (r[step].unwrap() as u64, values)
        })
        .collect()
}

/// Softmax probabilities (the model ends in log_softmax) and targets over the test set.
fn test_outputs(model: &SeedCnn, dm: &SyntheticDataModule) -> (Vec<Vec<f32>>, Vec<i64>) {
    let loader = dm.test_dataloader().unwrap().unwrap();
    let (mut probabilities, mut targets) = (Vec::new(), Vec::new());
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let [n, c] = [batch.targets.dims()[0], 10];
        let p: Vec<f32> = model.forward(batch.inputs).exp().into_data().convert::<f32>().try_to_vec().unwrap();
        probabilities.extend(p.chunks(c).map(|r| r.to_vec()).take(n));
        targets.extend(batch.targets.into_data().convert::<i64>().try_to_vec::<i64>().unwrap());
    }
    (probabilities, targets)
}

#[test]
fn a_training_run_reaches_wandb_and_tensorboard_as_their_readers_see_it() {
    let root = temp_dir("loggers-real-readers");
    let dm_seed = 5;
    let mut dm = SyntheticDataModule::new(dm_seed).sizes(640, 160, 320).batch_size(32).num_workers(1);
    let samples = dm.val_samples(8);
    let classes: Vec<String> = dm.class_names().unwrap();
    let sample_labels: Vec<String> = samples.iter().map(|s| classes[s.label].clone()).collect();
    let wandb = WandbLogger::new("fulmen-test")
        .name("loggers")
        .job_type("train")
        .tag("ci")
        .tag("cnn")
        .notes("read back by wandb-core")
        .group("tests")
        .id("loggers1")
        .log_model(true);
    let mut trainer = Trainer::builder()
        .max_epochs(2)
        .seed(3)
        .accelerator(fulmen::Accelerator::Cpu)
        .default_root_dir(&root)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .log_every_n_steps(5)
        .logger(CsvLogger::default_root())
        .logger(TensorBoardLogger::default_root())
        .logger(wandb)
        .callback(ModelCheckpoint::monitor("val_loss"))
        .callback(ImagePredictionLogger::new(samples, dm.batcher()))
        .build()
        .unwrap();
    fulmen::seed_everything(3, trainer.device());
    let config = SeedConfig::new([3, 32, 32], 10).with_learning_rate(1e-3);
    let model = SeedCnn::new(config, trainer.device()).unwrap();
    let fitted = trainer.fit(model, &mut dm).unwrap();
    let test = trainer.test(&fitted, &mut dm).unwrap();
    let (probabilities, targets) = test_outputs(&fitted, &dm);
    let best_ckpt = trainer.state().best_model_path.clone().unwrap();
    drop(trainer); // closes the W&B run (its exit record)

    // CSV and TensorBoard share version_0 (the PNG charts sit there too: CSV is the first logger).
    let version = root.join("lightning_logs/version_0");
    assert!(!root.join("lightning_logs/version_1").exists(), "CSV and TensorBoard split into two versions");
    for (chart, min_size) in [("test_pr_curve.png", (800, 600)), ("test_confusion_matrix.png", (200, 200))] {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(version.join(chart)).unwrap()));
        let info = decoder.read_info().unwrap().info().clone();
        assert!(info.width >= min_size.0 && info.height >= min_size.1, "{chart} is {}×{}", info.width, info.height);
    }
    let rows = csv_rows(&version);
    let val_losses: Vec<f64> = rows.iter().filter_map(|(_, v)| v.get("val_loss")?.as_f64()).collect();
    assert_eq!(val_losses.len(), 2);
    let best_val_loss = val_losses.iter().cloned().fold(f64::INFINITY, f64::min);

    let run_dir = latest_run(&root);
    assert!(run_dir.file_name().unwrap().to_string_lossy().starts_with("offline-run-"), "{}", run_dir.display());
    let records = decoded(&run_dir);
    let ckpt_name = format!("checkpoints/{}", best_ckpt.file_name().unwrap().to_string_lossy());
    let spec = json!({
        "wandb_dir": run_dir,
        "records": records.len(),
        "state": "finished",
        "exit_code": 0,
        "first_step": 0,
        "run": { "project": "fulmen-test", "run_id": "loggers1", "display_name": "loggers", "job_type": "train", "notes": "read back by wandb-core", "run_group": "tests", "tags": ["ci", "cnn"] },
        "config": { "input_shape": [3, 32, 32], "num_classes": 10, "learning_rate": 1e-3 },
        "summary": { "best_val_loss": best_val_loss, "test_acc": test["test_acc"], "test_loss": test["test_loss"] },
        "history": rows.iter().map(|(step, values)| json!({ "step": step, "values": values })).collect::<Vec<_>>(),
        "images": { "key": "examples", "epochs": 2, "count": 8, "width": 32, "height": 32, "classes": classes, "labels": sample_labels },
        "test": { "targets": targets, "probabilities": probabilities, "classes": classes, "pr_key": "test_pr_curve", "cm_key": "test_confusion_matrix" },
        "checkpoints": [ckpt_name],
    });
    reference::check("wandb", &spec, &root);

    let mut scalars = serde_json::Map::new();
    for (step, values) in &rows {
        for (name, value) in values {
            scalars.entry(name.clone()).or_insert_with(|| json!([])).as_array_mut().unwrap().push(json!([step, value]));
        }
    }
    let mut images = serde_json::Map::new();
    for i in 0..8 {
        images.insert(format!("examples/{i}"), json!([2, 32, 32]));
    }
    let cm =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(version.join("test_confusion_matrix.png")).unwrap())).read_info().unwrap().info().clone();
    images.insert("test_confusion_matrix/0".into(), json!([1, cm.width, cm.height]));
    let spec = json!({
        "tb_dir": version,
        "scalars": scalars,
        "images": images,
        "pr_curves": { "key": "test_pr_curve", "classes": classes, "targets": targets, "probabilities": probabilities },
        "hparams": { "learning_rate": 1e-3, "num_classes": 10, "input_shape": "[3,32,32]" },
        "status": 1,
    });
    reference::check("tensorboard", &spec, &root);
    let _ = std::fs::remove_dir_all(root);
}

const KILL_CHILD_ROOT: &str = "FULMEN_TEST_LOGGERS_KILL_ROOT";

/// In the child process: trains "forever" with W&B and TensorBoard until killed.
fn run_as_child() -> bool {
    let Ok(root) = std::env::var(KILL_CHILD_ROOT) else { return false };
    let root = PathBuf::from(root);
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .max_epochs(1_000_000)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .log_every_n_steps(1)
        .handle_sigint(false)
        .default_root_dir(&root)
        .logger(TensorBoardLogger::default_root())
        .logger(WandbLogger::new("killed").id("killed1"))
        .build()
        .unwrap();
    let _ = trainer.fit(Probe::new(trainer.device(), vec![1.0]), &mut PointsData { train: 16, val: 8, batch: 4 });
    true
}

#[test]
fn a_run_killed_mid_training_stays_readable_and_corruption_is_caught() {
    if run_as_child() {
        return;
    }
    let root = temp_dir("loggers-killed");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "loggers::a_run_killed_mid_training_stays_readable_and_corruption_is_caught", "--test-threads=1"])
        .env(KILL_CHILD_ROOT, &root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL: no chance to close anything) once it has logged a good number of rows.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let history = |root: &Path| {
        let Ok(target) = std::fs::read_link(root.join("wandb/latest-run")) else { return 0 };
        let dir = root.join("wandb").join(target);
        std::fs::read(dir.join("run-killed1.wandb")).ok().and_then(|b| fulmen::loggers::wandb::parse_records(&b).ok()).map_or(0, |r| r.len())
    };
    while history(&root) < 60 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let run_dir = latest_run(&root);
    let records = decoded(&run_dir);
    assert!(records.len() >= 60, "only {} records before the kill", records.len());
    assert!(records.iter().all(|r| r.exit.is_none()), "a killed run has no exit record");
    let version = root.join("lightning_logs/version_0");
    let events = std::fs::read_dir(&version)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("events.out.tfevents"))
        .unwrap()
        .path();
    let event_bytes = std::fs::read(&events).unwrap();
    assert!(fulmen::loggers::tensorboard::read_events(&event_bytes).unwrap().len() > 10);

    // Readable as it is: the loggers write whole records only, so the kill cut none, and wandb's
    // reader (which calls a file ending inside a record incomplete) reads it without complaint.
    let readable = json!({
        "wandb_dir": run_dir, "records": records.len(), "state": "running", "first_step": 0,
        "run": { "project": "killed", "run_id": "killed1", "tags": [] }, "config": {}, "history": [],
    });
    reference::check("wandb", &readable, &root);
    let tb = reference::check("tensorboard", &json!({ "tb_dir": version, "scalars": {} }), &root);
    assert!(tb.contains("ok"));

    // Corrupted copies: a byte flipped in the middle of each file.
    let corrupt = root.join("corrupt");
    let corrupt_run = corrupt.join(run_dir.file_name().unwrap());
    std::fs::create_dir_all(corrupt_run.join("files")).unwrap();
    let wandb_file = run_dir.join("run-killed1.wandb");
    let mut bytes = std::fs::read(&wandb_file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(corrupt_run.join("run-killed1.wandb"), &bytes).unwrap();
    let corrupt_tb = corrupt.join("tb");
    std::fs::create_dir_all(&corrupt_tb).unwrap();
    let mut tb_bytes = event_bytes.clone();
    let middle = tb_bytes.len() / 2;
    tb_bytes[middle] ^= 0x55;
    std::fs::write(corrupt_tb.join(events.file_name().unwrap()), &tb_bytes).unwrap();
    assert!(fulmen::loggers::tensorboard::read_events(&tb_bytes).is_err(), "fulmen's own reader misses the flipped byte");
    let spec = json!({ "wandb_dir": corrupt_run, "records": records.len(), "tb_dir": corrupt_tb, "intact_tb_dir": version });
    let report = reference::check("corrupt", &spec, &root);
    println!("{report}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_resumed_run_continues_its_steps_in_a_new_offline_folder() {
    let root = temp_dir("loggers-resume");
    let fit = |epochs: u64, resume: bool| {
        let mut trainer = Trainer::builder()
            .accelerator(fulmen::Accelerator::Cpu)
            .max_epochs(epochs)
            .enable_progress_bar(false)
            .enable_model_summary(false)
            .log_every_n_steps(1)
            .default_root_dir(&root)
            .logger(WandbLogger::new("resume").id("again1").resume(true))
            .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true))
            .build()
            .unwrap();
        let model = Probe::new(trainer.device(), vec![1.0, 0.5, 0.25, 0.125]);
        let data = &mut PointsData { train: 16, val: 8, batch: 4 };
        if resume {
            trainer.fit_from(model, data, "last").unwrap()
        } else {
            trainer.fit(model, data).unwrap()
        };
    };
    fit(2, false);
    let first = latest_run(&root);
    fit(4, true);
    let second = latest_run(&root);
    assert_ne!(first, second, "the resumed run writes a new offline folder");
    let history = |dir: &Path| -> Vec<(i64, i64)> {
        decoded(dir)
            .iter()
            .filter_map(|r| r.history.as_ref())
            .map(|h| {
                let global = h.item.iter().find(|i| i.nested_key == ["trainer/global_step"]).unwrap().value_json.parse().unwrap();
                (h.step.as_ref().map_or(0, |s| s.num), global)
            })
            .collect()
    };
    let (a, b) = (history(&first), history(&second));
    let run = decoded(&second).into_iter().find_map(|r| r.run).unwrap();
    assert!(run.resumed, "the second folder is marked resumed");
    assert_eq!(run.starting_step, a.last().unwrap().0 + 1);
    assert_eq!(b.first().unwrap().0, a.last().unwrap().0 + 1, "_step continues");
    assert!(b.first().unwrap().1 > a.last().unwrap().1, "trainer/global_step continues: {a:?} then {b:?}");
    let spec = json!({
        "wandb_dir": second, "records": decoded(&second).len(), "state": "finished", "exit_code": 0, "first_step": b.first().unwrap().0,
        "run": { "project": "resume", "run_id": "again1", "tags": [] }, "config": {}, "history": [],
    });
    reference::check("wandb", &spec, &root);
    let _ = std::fs::remove_dir_all(root);
}

/// A history record of exactly `size` encoded bytes (found by growing a padding value; the
/// key length is varied when a varint step skips the size).
fn history_of_size(step: i64, size: usize) -> Vec<u8> {
    use fulmen::loggers::wandb::{HistoryItem, HistoryRecord, HistoryStep};
    let item = |key: &str, json: String| HistoryItem { key: String::new(), nested_key: vec![key.into()], value_json: json };
    for key_len in 1..8 {
        for pad in 0..size {
            let record = Record {
                num: step + 2,
                history: Some(HistoryRecord {
                    item: vec![
                        item("_step", step.to_string()),
                        item("trainer/global_step", step.to_string()),
                        item(&"p".repeat(key_len), format!("\"{}\"", "x".repeat(pad))),
                    ],
                    step: Some(HistoryStep { num: step }),
                }),
                ..Default::default()
            };
            let bytes = <Record as prost::Message>::encode_to_vec(&record);
            if bytes.len() == size {
                return bytes;
            }
            if bytes.len() > size {
                break;
            }
        }
    }
    panic!("no history record of {size} bytes");
}

#[test]
fn wandbs_reader_reads_records_at_every_block_boundary_offset() {
    use fulmen::loggers::wandb::{BLOCK, RecordLog, RunExitRecord, RunRecord};
    let root = temp_dir("loggers-blocks");
    let dir = root.join("wandb/offline-run-20261127_000000-blocks1");
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let mut log = RecordLog::create(&dir.join("run-blocks1.wandb")).unwrap();
    let encode = |r: &Record| <Record as prost::Message>::encode_to_vec(r);
    let run = RunRecord { run_id: "blocks1".into(), project: "blocks".into(), ..Default::default() };
    log.append(&encode(&Record { num: 1, run: Some(run), ..Default::default() })).unwrap();
    let mut step = 0i64;
    let mut records = 1;
    let mut push = |log: &mut RecordLog, bytes: Vec<u8>, step: &mut i64| {
        log.append(&bytes).unwrap();
        *step += 1;
        records += 1;
    };
    // For each gap, a record whose chunk ends `gap` bytes before the next block boundary, then
    // a small record after it (which starts with padding, an empty FIRST chunk, or a new block).
    for gap in 0..=20usize {
        let left = BLOCK - log.offset() % BLOCK;
        let size = if left > 7 + gap + 100 { left - 7 - gap } else { left + BLOCK - 7 - gap };
        if size >= BLOCK - 7 {
            // Fill the rest of this block first so the sized record fits in one chunk of the next.
            let fill = left.saturating_sub(7);
            push(&mut log, history_of_size(step, fill.max(120)), &mut step);
            let left = BLOCK - log.offset() % BLOCK;
            push(&mut log, history_of_size(step, left - 7 - gap), &mut step);
        } else {
            push(&mut log, history_of_size(step, size), &mut step);
        }
        assert_eq!(BLOCK - log.offset() % BLOCK, if gap == 0 { BLOCK } else { gap }, "gap {gap}");
        push(&mut log, history_of_size(step, 120), &mut step);
    }
    // Records larger than a block: split into FIRST, MIDDLE..., LAST chunks.
    for size in [BLOCK + 1, 3 * BLOCK + 500] {
        push(&mut log, history_of_size(step, size), &mut step);
    }
    let exit = Record { num: step + 2, exit: Some(RunExitRecord { exit_code: 0, runtime: 1 }), ..Default::default() };
    log.append(&encode(&exit)).unwrap();
    records += 1;
    log.sync().unwrap();
    drop(log);
    assert_eq!(read_records(&dir.join("run-blocks1.wandb")).unwrap().len(), records);
    let spec = json!({
        "wandb_dir": dir, "records": records, "state": "finished", "exit_code": 0, "first_step": 0,
        "run": { "project": "blocks", "run_id": "blocks1", "tags": [] }, "config": {}, "history": [],
    });
    reference::check("wandb", &spec, &root);
    let _ = std::fs::remove_dir_all(root);
}

/// Ends the first test batch with `error`.
struct FailTest(fn() -> fulmen::Error);

impl Callback<Probe> for FailTest {
    fn on_test_batch_start(&mut self, _trainer: &mut TrainerView<'_, Probe>, _batch_idx: usize) -> fulmen::Result<()> {
        Err((self.0)())
    }
}

#[test]
fn a_failed_or_interrupted_test_stage_is_the_runs_exit_code() {
    let cases: [(fn() -> fulmen::Error, i32); 2] =
        [(|| fulmen::Error::Interrupted { epoch: 1, step: 2 }, 255), (|| fulmen::Error::user("the test step failed"), 1)];
    for (i, (error, code)) in cases.into_iter().enumerate() {
        let root = temp_dir(&format!("loggers-stage-outcome-{i}"));
        let mut trainer = Trainer::builder()
            .max_epochs(1)
            .enable_progress_bar(false)
            .enable_model_summary(false)
            .default_root_dir(&root)
            .logger(WandbLogger::new("outcome"))
            .callback(FailTest(error))
            .build()
            .unwrap();
        let mut data = PointsData { train: 8, val: 4, batch: 4 };
        let fitted = trainer.fit(Probe::new(trainer.device(), vec![1.0]), &mut data).unwrap();
        assert!(trainer.test(&fitted, &mut data).is_err());
        // A later stage's success does not undo the failure.
        trainer.validate(&fitted, &mut data).unwrap();
        drop(trainer); // closes the run
        let exits: Vec<i32> = decoded(&latest_run(&root)).iter().filter_map(|r| r.exit.as_ref().map(|e| e.exit_code)).collect();
        assert_eq!(exits, [code], "fit succeeded, test ended with {}", error());
    }
}

/// A batch type of the user's own: images and labels under other names.
#[derive(Clone)]
struct Photos {
    pixels: Tensor<4>,
    classes: Tensor<1, Int>,
}

impl Batch for Photos {
    fn batch_size(&self) -> usize {
        self.classes.dims()[0]
    }
}

impl fulmen::data::ImageBatch for Photos {
    fn images(&self) -> Tensor<4> {
        self.pixels.clone()
    }
    fn labels(&self) -> Tensor<1, Int> {
        self.classes.clone()
    }
}

/// `ImagePredictionLogger::from_batch` takes any batch of images with labels, keeps the first
/// `n`, and shows each rescaled from its darkest to its brightest value.
#[test]
fn image_predictions_take_any_batch_of_labelled_images() {
    let device = Device::flex();
    // Three grey 2×1 images: [-1, 1], [0.5, 0.25], [3, 3] (flat: shown mid-grey).
    let pixels = Tensor::<4>::from_data(TensorData::new(vec![-1.0f32, 1.0, 0.5, 0.25, 3.0, 3.0], [3, 1, 1, 2]), &device);
    let classes = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0, 1], [3]), &device);
    let logger = ImagePredictionLogger::from_batch(&Photos { pixels, classes }, 2).unwrap();
    let names = vec!["cat".to_string(), "dog".to_string()];
    let images = logger.images(&[0, 0], &names).unwrap();
    assert_eq!(images.len(), 2, "the first n");
    assert_eq!((images[0].pixel(0, 0), images[0].pixel(1, 0)), ([0, 0, 0], [255, 255, 255]));
    assert_eq!((images[1].pixel(0, 0), images[1].pixel(1, 0)), ([255, 255, 255], [0, 0, 0]));
    assert_eq!(images[0].caption(), Some("Pred: cat, Label: dog"));
    assert_eq!(images[1].caption(), Some("Pred: cat, Label: cat"));
    let flat = ImagePredictionLogger::from_batch(
        &Photos {
            pixels: Tensor::from_data(TensorData::new(vec![3.0f32, 3.0], [1, 1, 1, 2]), &device),
            classes: Tensor::from_data(TensorData::new(vec![0i64], [1]), &device),
        },
        1,
    )
    .unwrap();
    assert_eq!(flat.images(&[0], &names).unwrap()[0].pixel(1, 0), [128, 128, 128]);
}
