//! Exact resume with data augmentation on: the training transforms draw from (seed, epoch, item),
//! so a run stopped after an epoch and resumed trains on the same augmented images, bit for bit.

use fulmen::prelude::*;

use crate::probe::temp_dir;

/// Hyperparameters of [`Tiny`].
#[hyperparameters]
pub struct TinyConfig {
    /// `[C, H, W]` of the images.
    pub input_shape: [usize; 3],
    /// Learning rate.
    #[hparam(default = 3e-3)]
    pub learning_rate: f64,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = TinyConfig, metrics(accuracy), optimizer = adam(lr = learning_rate))]
pub struct Tiny {
    #[layer(conv2d(3 -> 4, kernel = 3, stride = 2), relu, max_pool(2))]
    conv: Conv2d,
    #[layer(linear(auto -> 10))]
    head: Linear,
    #[module(skip)]
    hparams: TinyConfig,
}

fn data(augment: bool) -> SyntheticDataModule {
    let dm = SyntheticDataModule::new(4).sizes(64, 16, 16).batch_size(16).num_workers(2);
    if augment { dm.train_transforms(Compose::crop_and_flip(32).then(ColorJitter::new(0.3, 0.3))) } else { dm }
}

fn run(root: &std::path::Path, epochs: u64, augment: bool, resume: bool) -> Vec<Vec<f32>> {
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(21)
        .max_epochs(epochs)
        .num_sanity_val_steps(0)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .default_root_dir(root)
        .callback(ModelCheckpoint::default().dirpath(root.join("ckpts")).save_last(true))
        .build()
        .unwrap();
    let model = Tiny::new(TinyConfig::new([3, 32, 32]), trainer.device()).unwrap();
    let model = if resume { trainer.fit_from(model, &mut data(augment), "last") } else { trainer.fit(model, &mut data(augment)) }.unwrap();
    [model.conv.weight.val().into_data(), model.head.weight.val().into_data()].into_iter().map(|w| w.try_to_vec::<f32>().unwrap()).collect()
}

#[test]
fn a_resumed_run_with_augmentation_is_bit_identical() {
    let _turn = crate::exclusive();
    let (full, split, plain) = (temp_dir("augment-full"), temp_dir("augment-split"), temp_dir("augment-plain"));
    let uninterrupted = run(&full, 3, true, false);
    run(&split, 1, true, false);
    let resumed = run(&split, 3, true, true);
    assert_eq!(resumed, uninterrupted, "weights after 3 epochs, resumed after the first");
    assert_ne!(run(&plain, 3, false, false), uninterrupted, "the transforms change what is trained on");
    for dir in [full, split, plain] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
