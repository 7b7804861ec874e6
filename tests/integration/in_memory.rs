//! `InMemoryDataModule` over a `TensorDataset` split by `random_split`: an MLP on rows of
//! features learns, and the splits are used as given.

use fulmen::prelude::*;

/// Hyperparameters of [`Mlp`].
#[hyperparameters]
pub struct MlpConfig {
    /// Hidden width.
    #[hparam(default = 16)]
    pub hidden: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = MlpConfig, metrics(accuracy), optimizer = adam(lr = 0.02))]
pub struct Mlp {
    #[layer(linear(3 -> hidden), relu)]
    fc1: Linear,
    #[layer(linear(hidden -> 2))]
    fc2: Linear,
    #[module(skip)]
    hparams: MlpConfig,
}

/// 600 points in a cube, labelled by which side of the plane x + y - z = 0 they lie.
fn table() -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = fulmen::rng::SplitMix64::new(3);
    (0..600)
        .map(|_| {
            let p: Vec<f32> = (0..3).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
            let label = usize::from(p[0] + p[1] - p[2] > 0.0);
            (p, label)
        })
        .unzip()
}

#[test]
fn an_mlp_learns_from_rows_held_in_memory() {
    let (rows, labels) = table();
    let all = TensorDataset::from_rows(rows, labels).unwrap();
    let [train, val, test] = all.random_split([400, 100, 100], 7).unwrap();
    let mut dm = InMemoryDataModule::<2>::new(train).unwrap().val(val).unwrap().test(test).unwrap().batch_size(20).num_workers(2);
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(5)
        .max_epochs(8)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .build()
        .unwrap();
    let model = Mlp::new(MlpConfig::new(), trainer.device()).unwrap();
    let model = trainer.fit(model, &mut dm).unwrap();
    assert_eq!(trainer.state().global_step, 8 * 20, "400 training rows in batches of 20");
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.9, "{metrics:?}");
}
