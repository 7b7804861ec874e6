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
