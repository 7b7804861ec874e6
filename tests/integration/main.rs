//! Integration tests of the fulmen facade (one binary, so Burn is linked once).

#[path = "../common/seed_cnn.rs"]
mod seed_cnn;

mod probe;
mod reference;

mod allocator;
mod bad_input;
mod checkpoints;
mod cifar10;
mod cli;
mod fit_synthetic;
mod hook_order;
mod hparams;
mod hparams_options;
mod image_folder;
mod in_memory;
mod kernels;
mod layer_ops;
mod log_semantics;
mod loggers;
mod metrics_parity;
mod optimization;
mod precision;
mod readme_tour;
mod trainer_config;
mod user_crate;
mod weight_averaging;
