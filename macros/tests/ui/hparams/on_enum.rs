use fulmen::prelude::*;

#[hyperparameters]
pub enum Optimizer {
    Adam,
    Sgd,
}

fn main() {}
