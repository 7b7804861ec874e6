use fulmen::prelude::*;

#[hyperparameters]
pub struct Config<T> {
    pub value: T,
}

fn main() {}
