//! Checkpoint files: what they hold, and clear errors for truncated, corrupted or foreign ones.

use fulmen::burn::nn::LinearConfig;
use fulmen::prelude::*;

use crate::probe::{PointsData, Probe, temp_dir};

fn trained_checkpoint(name: &str) -> (std::path::PathBuf, std::path::PathBuf, Probe) {
    let root = temp_dir(name);
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .no_logger()
        .enable_progress_bar(false)
        .max_epochs(2)
        .callback(ModelCheckpoint::default().dirpath(&root))
        .build()
        .unwrap();
    let model = Probe::new(trainer.device(), vec![1.0]);
    let fitted = trainer.fit(model, &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let path = trainer.state().best_model_path.clone().expect("a checkpoint");
    (root, path, fitted)
}

#[test]
fn a_checkpoint_holds_weights_optimizer_and_position() {
    let (root, path, fitted) = trained_checkpoint("ckpt-contents");
    assert_eq!(path.file_name().unwrap(), "epoch=1-step=4.ckpt");
    let ckpt = fulmen::Checkpoint::read(&path).unwrap();
    assert_eq!((ckpt.header.epoch, ckpt.header.global_step), (1, 4));
    let names: Vec<_> = ckpt.header.sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["model", "optimizer"]);
    assert!(ckpt.header.model_type.ends_with("Probe"));
    // Only the latest is kept without a monitor (save_top_k = 1).
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
    let device = Device::flex();
    let loaded = ckpt.load_weights(Probe::new(&device, vec![]), &path).unwrap();
    let x = Tensor::<2>::from_floats([[0.5, -0.5], [0.25, -0.25]], &device);
    let restored: Vec<f32> = loaded.forward(x.clone()).into_data().try_to_vec().unwrap();
    let trained: Vec<f32> = fitted.forward(x).into_data().try_to_vec().unwrap();
    assert_eq!(restored, trained, "the checkpoint must restore the trained weights exactly");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn damaged_or_foreign_checkpoints_are_errors_that_say_why() {
    let (root, path, _) = trained_checkpoint("ckpt-damage");
    let bytes = std::fs::read(&path).unwrap();
    let check = |name: &str, data: &[u8], expected: &str| {
        let p = root.join(name);
        std::fs::write(&p, data).unwrap();
        let err = fulmen::Checkpoint::read(&p).unwrap_err().to_string();
        assert!(err.contains(expected), "{name}: {err}");
    };
    check("truncated.ckpt", &bytes[..bytes.len() - 100], "truncated");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    check("flipped.ckpt", &flipped, "CRC-32");
    check("garbage.ckpt", b"not a checkpoint at all", "not a fulmen checkpoint");
    // An edited header value (the epoch, keeping the length) is caught by the header's CRC.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let at = text.find("\"epoch\":1,").expect("the header holds the epoch");
    let mut edited = bytes.clone();
    edited[at + "\"epoch\":".len()] = b'9';
    check("edited.ckpt", &edited, "header fails its CRC-32 check");
    // Format 1 (no header CRC) is still read.
    let mut legacy = bytes.clone();
    legacy.drain(16..20);
    legacy[8..12].copy_from_slice(&1u32.to_le_bytes());
    let legacy_path = root.join("legacy.ckpt");
    std::fs::write(&legacy_path, &legacy).unwrap();
    assert_eq!(fulmen::Checkpoint::read(&legacy_path).unwrap().header, fulmen::Checkpoint::read(&path).unwrap().header);
    let mut cut = bytes.clone();
    cut.truncate(18);
    check("cut.ckpt", &cut, "truncated");

    #[derive(Module, Debug)]
    struct Other {
        linear: Linear,
    }
    let device = Device::flex();
    let other = Other { linear: LinearConfig::new(2, 3).init(&device) };
    let err = fulmen::Checkpoint::read(&path).unwrap().load_weights(other, &path).unwrap_err().to_string();
    assert!(err.contains("do not fit") && err.contains("Probe"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

/// Set in the child process of the kill test: write checkpoints to this path until killed.
const KILL_CHILD_PATH: &str = "FULMEN_TEST_KILL_CHILD_PATH";

/// A 1024×4096 linear layer of constants (the same in both processes): a 16 MiB checkpoint,
/// slow enough to be killed mid-write.
fn big_layer(device: &Device) -> Linear {
    let constant = fulmen::burn::nn::Initializer::Constant { value: 0.5 };
    LinearConfig::new(1024, 4096).with_initializer(constant).init(device)
}

fn write_big(path: &std::path::Path, layer: &Linear, epoch: u64) {
    let position = fulmen::checkpoint::Position { epoch, ..Default::default() };
    fulmen::checkpoint::save(path, layer, &[], position, None, Default::default(), Default::default()).unwrap();
}

#[test]
fn a_process_killed_mid_write_leaves_the_previous_checkpoint_intact() {
    let device = Device::flex();
    let layer = big_layer(&device);
    if let Ok(path) = std::env::var(KILL_CHILD_PATH) {
        // Child: rewrite the checkpoint forever; the parent kills this process.
        for epoch in 1.. {
            write_big(std::path::Path::new(&path), &layer, epoch);
        }
        return;
    }
    let root = temp_dir("kill-write");
    let path = root.join("model.ckpt");
    write_big(&path, &layer, 0);
    let mut killed_mid_write = 0;
    for attempt in 0..4u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "checkpoints::a_process_killed_mid_write_leaves_the_previous_checkpoint_intact", "--test-threads=1"])
            .env(KILL_CHILD_PATH, &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let tmp = root.join(format!(".model.ckpt.tmp-{}", child.id()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !tmp.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(std::time::Duration::from_millis(attempt * 3));
        child.kill().unwrap();
        child.wait().unwrap();
        if tmp.exists() {
            killed_mid_write += 1;
            std::fs::remove_file(&tmp).unwrap();
        }
        // Whatever the moment of the kill, the checkpoint is a whole one, old or new.
        let checkpoint = fulmen::Checkpoint::read(&path).unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        let restored = checkpoint.load_weights(big_layer(&device), &path).unwrap();
        assert_eq!(restored.weight.val().into_data(), layer.weight.val().into_data());
    }
    assert!(killed_mid_write > 0, "no kill landed during a write; the test proved nothing");
    let _ = std::fs::remove_dir_all(root);
}

/// Rewrites a checkpoint's header with a correct CRC: what a deliberate edit looks like.
fn rewrite_header(from: &std::path::Path, to: &std::path::Path, edit: impl FnOnce(&mut fulmen::serde_json::Value)) {
    let bytes = std::fs::read(from).unwrap();
    let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut header: fulmen::serde_json::Value = fulmen::serde_json::from_slice(&bytes[20..20 + len]).unwrap();
    edit(&mut header);
    let json = fulmen::serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(crc32fast::hash(&json).to_le_bytes());
    out.extend(&json);
    out.extend(&bytes[20 + len..]);
    std::fs::write(to, out).unwrap();
}

#[test]
fn a_resume_position_outside_the_run_is_refused_or_trains_nothing() {
    let (root, path, _) = trained_checkpoint("ckpt-position");
    let resume = |ckpt: &std::path::Path| {
        let mut trainer = Trainer::builder().accelerator(fulmen::Accelerator::Cpu).no_logger().enable_progress_bar(false).max_epochs(3).build().unwrap();
        let result = trainer.fit_from(Probe::new(trainer.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }, ckpt).map(|_| ());
        (result, trainer.state().clone())
    };
    // Past the end of its epoch (2 batches, 8 samples): an error, not a silently skipped epoch.
    let far = root.join("far.ckpt");
    rewrite_header(&path, &far, |h| {
        h["batches_in_epoch"] = 100_000.into();
        h["samples_in_epoch"] = 400_000.into();
        h["epoch_finished"] = false.into();
    });
    let err = resume(&far).0.unwrap_err().to_string();
    assert!(err.contains("resumes after sample 400000 of epoch 1, but this run's epoch has 8"), "{err}");
    // More batches than samples cannot be.
    let odd = root.join("odd.ckpt");
    rewrite_header(&path, &odd, |h| {
        h["batches_in_epoch"] = 100_000.into();
        h["epoch_finished"] = false.into();
    });
    let err = resume(&odd).0.unwrap_err().to_string();
    assert!(err.contains("inconsistent: 100000 batches but 8 samples done in epoch 1"), "{err}");
    // Far beyond max_epochs: nothing to train, and no replay of 4e9 epochs' data order.
    let late = root.join("late.ckpt");
    rewrite_header(&path, &late, |h| h["epoch"] = 4_000_000_000u64.into());
    let (result, state) = resume(&late);
    result.unwrap();
    assert_eq!((state.epoch, state.global_step), (4_000_000_001, 4), "nothing was trained");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn checkpoint_paths_are_absolute_so_a_run_resumed_elsewhere_finds_them() {
    // A root relative to the working directory, as `--default-root-dir runs` would be.
    let root = std::path::PathBuf::from(format!("target/fulmen-test-relative-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .max_epochs(2)
        .default_root_dir(&root)
        .callback(ModelCheckpoint::monitor("val_loss").save_last(true))
        .build()
        .unwrap();
    trainer.fit(Probe::new(trainer.device(), vec![2.0, 1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    let best = trainer.state().best_model_path.clone().expect("a best checkpoint");
    assert!(best.is_absolute() && best.is_file(), "{}", best.display());
    let last = fulmen::Checkpoint::read(trainer.state().last_model_path.as_ref().expect("last.ckpt")).unwrap();
    let (_, state) = last.header.callbacks.iter().find(|(k, _)| k.starts_with("modelcheckpoint")).expect("ModelCheckpoint's state");
    for key in ["best_model_path", "last_model_path", "dirpath"] {
        let path = std::path::Path::new(state[key].as_str().unwrap_or_else(|| panic!("{key} in {state}")));
        assert!(path.is_absolute() && path.exists(), "{key} = {}", path.display());
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_ckpt_path_that_is_no_checkpoint_file_says_what_it_is() {
    let root = temp_dir("ckpt-path-kinds");
    let trainer = |dirpath: &std::path::Path| {
        Trainer::builder()
            .accelerator(fulmen::Accelerator::Cpu)
            .no_logger()
            .enable_progress_bar(false)
            .max_epochs(1)
            .default_root_dir(&root)
            .callback(ModelCheckpoint::default().dirpath(dirpath))
            .build()
            .unwrap()
    };
    let fit_from = |ckpt: fulmen::CkptPath| {
        let mut t = trainer(&root.join("checkpoints"));
        t.fit_from(Probe::new(t.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }, ckpt).map(|_| ()).unwrap_err().to_string()
    };
    let err = fit_from(root.clone().into());
    assert!(err.contains("is a folder, not a checkpoint file"), "{err}");
    std::os::unix::fs::symlink(root.join("loop-b.ckpt"), root.join("loop-a.ckpt")).unwrap();
    std::os::unix::fs::symlink(root.join("loop-a.ckpt"), root.join("loop-b.ckpt")).unwrap();
    let err = fit_from(root.join("loop-a.ckpt").into());
    assert!(err.contains("cannot be read") && err.to_lowercase().contains("symbolic links"), "{err}");
    // `last` with nothing saved lists each folder once (the callback's dirpath is root/checkpoints too).
    let err = fit_from("last".into());
    assert_eq!(err.matches("checkpoints").count(), 1, "{err}");
    // A broken last.ckpt is reported, not skipped for an older checkpoint.
    let dir = root.join("checkpoints");
    let mut t = trainer(&dir);
    t.fit(Probe::new(t.device(), vec![1.0]), &mut PointsData { train: 8, val: 4, batch: 4 }).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.ckpt"), dir.join("last.ckpt")).unwrap();
    let err = fit_from("last".into());
    assert!(err.contains("last.ckpt") && err.contains("cannot read it"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

/// `into`'s checkpoint with its section `name` taken from `from`: a crafted file with valid CRCs.
fn splice_section(into: &std::path::Path, from: &std::path::Path, name: &str, to: &std::path::Path) {
    let parse = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        let len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let header: fulmen::serde_json::Value = fulmen::serde_json::from_slice(&bytes[20..20 + len]).unwrap();
        let mut sections = Vec::new();
        let mut at = 20 + len;
        for s in header["sections"].as_array().unwrap() {
            let n = s["len"].as_u64().unwrap() as usize;
            sections.push((s.clone(), bytes[at..at + n].to_vec()));
            at += n;
        }
        (header, sections)
    };
    let (mut header, mut sections) = parse(into);
    let (_, donor) = parse(from);
    let taken = donor.into_iter().find(|(s, _)| s["name"] == name).expect("the donor has the section");
    let slot = sections.iter_mut().find(|(s, _)| s["name"] == name).expect("the file has the section");
    *slot = taken;
    header["sections"] = sections.iter().map(|(s, _)| s.clone()).collect();
    let json = fulmen::serde_json::to_vec(&header).unwrap();
    let mut out = std::fs::read(into).unwrap()[..12].to_vec();
    out.extend((json.len() as u32).to_le_bytes());
    out.extend(crc32fast::hash(&json).to_le_bytes());
    out.extend(&json);
    sections.iter().for_each(|(_, b)| out.extend(b));
    std::fs::write(to, out).unwrap();
}

/// A checkpoint of the tutorial's CNN (Adam) after 2 steps, and the trainer's root.
fn cnn_checkpoint(name: &str, seed: u64) -> (std::path::PathBuf, std::path::PathBuf) {
    use crate::seed_cnn::{SeedCnn, SeedConfig};
    let root = temp_dir(name);
    let mut trainer = Trainer::builder()
        .accelerator(fulmen::Accelerator::Cpu)
        .no_logger()
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .max_epochs(1)
        .seed(seed)
        .limit_train_batches(fulmen::Limit::Batches(2))
        .limit_val_batches(fulmen::Limit::Batches(1))
        .callback(ModelCheckpoint::default().dirpath(&root))
        .build()
        .unwrap();
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device()).unwrap();
    trainer.fit(model, &mut SyntheticDataModule::new(seed).sizes(64, 16, 16).batch_size(16)).unwrap();
    let path = trainer.state().best_model_path.clone().expect("a checkpoint");
    (root, path)
}

#[test]
fn an_optimizer_state_from_another_model_is_refused_on_resume() {
    use crate::seed_cnn::{SeedCnn, SeedConfig};
    let (root, path) = cnn_checkpoint("ckpt-foreign-optimizer", 1);
    let (other_root, other) = cnn_checkpoint("ckpt-foreign-donor", 2);
    let crafted = root.join("crafted.ckpt");
    splice_section(&path, &other, "optimizer", &crafted);
    fulmen::Checkpoint::read(&crafted).expect("the crafted file is a valid checkpoint");
    let resume = |ckpt: &std::path::Path| {
        let mut trainer = Trainer::builder()
            .accelerator(fulmen::Accelerator::Cpu)
            .no_logger()
            .enable_progress_bar(false)
            .max_epochs(2)
            .limit_train_batches(fulmen::Limit::Batches(1))
            .limit_val_batches(fulmen::Limit::Batches(1))
            .build()
            .unwrap();
        let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10), trainer.device()).unwrap();
        trainer.fit_from(model, &mut SyntheticDataModule::new(1).sizes(64, 16, 16).batch_size(16), ckpt).map(|_| ())
    };
    resume(&path).expect("the untouched checkpoint resumes");
    let err = resume(&crafted).unwrap_err().to_string();
    assert!(err.contains("the state of optimizer 0 (Adam) does not fit the model") && err.contains("does not step"), "{err}");
    let _ = std::fs::remove_dir_all(root);
    let _ = std::fs::remove_dir_all(other_root);
}
