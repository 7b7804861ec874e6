use fulmen::prelude::*;

pub struct Opaque;

#[hyperparameters]
pub struct Config {
    pub learning_rate: f64,
    pub opaque: Opaque,
}

fn main() {}
