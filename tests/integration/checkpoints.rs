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
