//! The grammar's upsampling ops train: a derived model that shrinks, grows again with
//! `conv_transpose2d` and `upsample`, and classifies learns the synthetic shapes, and the
//! transposed layer's weights move (its gradient flows through `upsample`).

use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32, 32], metrics(accuracy), optimizer = adam(lr = 0.005))]
pub struct UpDown {
    #[layer(conv2d(3 -> 8, kernel = 3, stride = 2, padding = 1), relu)]
    down: Conv2d,
    #[layer(conv_transpose2d(8 -> 8, kernel = 4, stride = 2, padding = 1), relu, max_pool(4), upsample(2), max_pool(4))]
    up: ConvTranspose2d,
    #[layer(linear(auto -> 10))]
    head: Linear,
}

#[test]
fn a_model_with_transposed_convolution_and_upsampling_learns() {
    let mut dm = SyntheticDataModule::new(4).sizes(512, 64, 128).batch_size(32).num_workers(2);
    let mut trainer = Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(2)
        .max_epochs(3)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .no_logger()
        .build()
        .unwrap();
    let model = UpDown::new(trainer.device()).unwrap();
    let before = model.up.weight.val().into_data();
    let model = trainer.fit(model, &mut dm).unwrap();
    assert_ne!(model.up.weight.val().into_data(), before, "the transposed layer did not train");
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.3, "chance is 0.1: {metrics:?}");
}

/// A text classifier derived without hand-written layers: token ids → embedding → conv1d →
/// max_pool1d → linear. Its batches are `ClassificationBatch<2, Int>`, from its first op.
#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [16], metrics(accuracy), optimizer = adam(lr = 0.01))]
pub struct KeywordSpotter {
    #[layer(embedding(50 -> 16))]
    embed: Embedding,
    #[layer(conv1d(16 -> 32, kernel = 3, padding = same), relu)]
    conv: Conv1d,
    #[layer(layer_norm, max_pool1d(16))]
    norm: LayerNorm,
    #[layer(linear(auto -> 4))]
    head: Linear,
}

/// Sequences of 16 ids from 4..VOCAB with one keyword (0..4) somewhere; its class is the keyword.
fn keywords(n: usize, seed: u64) -> TensorDataset {
    let mut rng = fulmen::rng::SplitMix64::new(seed);
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let mut row: Vec<f32> = (0..16).map(|_| rng.uniform(4.0, VOCAB as f64).floor() as f32).collect();
        let class = rng.uniform(0.0, 4.0).floor() as usize;
        row[rng.uniform(0.0, 16.0).floor() as usize] = class as f32;
        rows.push(row);
        labels.push(class);
    }
    TensorDataset::from_rows(rows, labels).unwrap()
}

/// The spotter's vocabulary.
const VOCAB: usize = 50;

fn quiet_trainer<M: LightningModule>(epochs: u64) -> Trainer<M> {
    Trainer::builder()
        .accelerator(Accelerator::Cpu)
        .seed(3)
        .max_epochs(epochs)
        .enable_progress_bar(false)
        .enable_model_summary(false)
        .num_sanity_val_steps(0)
        .no_logger()
        .build()
        .unwrap()
}

#[test]
fn a_derived_text_classifier_learns_which_keyword_a_sequence_holds() {
    let mut dm = InMemoryDataModule::<2, Int>::new(keywords(768, 1)).unwrap().val(keywords(256, 2)).unwrap().test(keywords(256, 3)).unwrap();
    let mut trainer = quiet_trainer(4);
    let model = KeywordSpotter::new(trainer.device()).unwrap();
    let model = trainer.fit(model, &mut dm).unwrap();
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.9, "chance is 0.25: {metrics:?}");
}

#[test]
fn token_ids_outside_the_vocabulary_or_not_whole_are_errors() {
    let mut bad = keywords(64, 4);
    let mut rows: Vec<Vec<f32>> = (0..bad.len()).map(|i| bad.get(i).unwrap().input).collect();
    let labels: Vec<usize> = (0..bad.len()).map(|i| bad.get(i).unwrap().label).collect();
    rows[37][5] = VOCAB as f32 + 7.0;
    bad = TensorDataset::from_rows(rows.clone(), labels.clone()).unwrap();
    let mut dm = InMemoryDataModule::<2, Int>::new(bad).unwrap().batch_size(16);
    let mut trainer = quiet_trainer(1);
    let model = KeywordSpotter::new(trainer.device()).unwrap();
    let err = trainer.fit(model, &mut dm).unwrap_err().to_string();
    assert!(err.contains("token id 57 is outside the embedding's vocabulary 0..50; give the embedding a vocabulary of at least 58"), "{err}");

    rows[3][0] = 2.5;
    let err = InMemoryDataModule::<2, Int>::new(TensorDataset::from_rows(rows, labels).unwrap()).unwrap_err().to_string();
    assert!(err.contains("the training TensorDataset, item 3: input value 2.5 (at 0) is not a token id"), "{err}");
}

/// Two residual blocks: `residual(a)` adds the input of field `a`.
#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [3, 32, 32], metrics(accuracy), optimizer = adam(lr = 0.005))]
pub struct TinyResNet {
    #[layer(conv2d(3 -> 16, kernel = 3, stride = 2, padding = 1), relu)]
    stem: Conv2d,
    #[layer(conv2d(16 -> 16, kernel = 3, padding = same), relu)]
    a1: Conv2d,
    #[layer(conv2d(16 -> 16, kernel = 3, padding = same))]
    a2: Conv2d,
    #[layer(group_norm(4), residual(a1), relu, max_pool(2))]
    norm: GroupNorm,
    #[layer(linear(auto -> 10))]
    head: Linear,
}

#[test]
fn a_residual_block_adds_its_input_and_learns() {
    let device = Device::flex();
    let model = TinyResNet::new(&device).unwrap();
    let x = Tensor::<4>::random([2, 3, 32, 32], fulmen::burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    // The block's output is its input plus the branch: zero the branch and the input comes out.
    let input = fulmen::nn::conv2d_forward(&model.stem, x.clone()).clamp_min(0.0);
    let mut zeroed = model.clone();
    zeroed.norm.gamma = zeroed.norm.gamma.map(|g| g.map(|t| t.zeros_like()));
    zeroed.norm.beta = zeroed.norm.beta.map(|b| b.map(|t| t.zeros_like()));
    let features = zeroed.forward_features(x);
    let expected =
        fulmen::nn::max_pool2d(input.clamp_min(0.0), fulmen::shape::Window { kernel: 2, stride: 2, padding: fulmen::shape::Padding::Valid, dilation: 1 });
    assert!(features.sub(expected).abs().max().into_scalar::<f32>() < 1e-5);

    let mut dm = SyntheticDataModule::new(4).sizes(512, 64, 128).batch_size(32).num_workers(2);
    let mut trainer = quiet_trainer(3);
    let model = trainer.fit(TinyResNet::new(trainer.device()).unwrap(), &mut dm).unwrap();
    let metrics = trainer.test(&model, &mut dm).unwrap();
    assert!(metrics["test_acc"] > 0.3, "chance is 0.1: {metrics:?}");
}

/// Window sizes from the hyperparameters, with no input shape to track.
#[hyperparameters]
pub struct PoolConfig {
    /// The pooling window.
    pub pool: usize,
    /// The upsampling scale.
    pub scale: usize,
}

#[derive(Module, LightningModule, Debug)]
#[lightning(hparams = PoolConfig)]
pub struct Untracked {
    #[layer(conv2d(3 -> 4, kernel = 3), max_pool(pool), upsample(scale))]
    conv: Conv2d,
    #[layer(linear(3600 -> 2))]
    head: Linear,
    #[module(skip)]
    hparams: PoolConfig,
}

#[test]
fn window_sizes_from_hyperparameters_are_checked_without_an_input_shape() {
    let device = Device::flex();
    let err = Untracked::new(PoolConfig::new(0, 2), &device).unwrap_err().to_string();
    assert!(err.contains("layer `conv`: pooling kernel, stride and dilation must be at least 1"), "{err}");
    let err = Untracked::new(PoolConfig::new(2, 0), &device).unwrap_err().to_string();
    assert!(err.contains("layer `conv`: upsample scale must be at least 1"), "{err}");
    let model = Untracked::new(PoolConfig::new(2, 2), &device).unwrap();
    assert_eq!(model.forward(Tensor::zeros([1, 3, 32, 32], &device)).dims(), [1, 2]);
}
