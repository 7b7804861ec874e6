use fulmen::prelude::*;

#[hyperparameters]
pub struct Config(f64, usize);

fn main() {}
