use fulmen::prelude::*;

#[hyperparameters]
pub struct Config {
    #[hparam(default = "adamw", choices = ["adam", "sgd"])]
    pub optimizer: String,
    #[hparam(default = 48, choices = [16, 32, 64])]
    pub width: usize,
}

fn main() {}
