use fulmen::prelude::*;

/// Debug and Clone, as hyperparameters need, but not serde's traits.
#[derive(Debug, Clone)]
pub struct Opaque;

#[hyperparameters]
pub struct Config {
    pub learning_rate: f64,
    pub opaque: Opaque,
}

fn main() {}
