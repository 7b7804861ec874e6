use fulmen::prelude::*;

#[derive(LightningModule)]
pub enum Net {
    A,
}

fn main() {}
