use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(metrics(f1(average = mean), fbeta, accuracy(top_k = 2, average = macro), precision(beta = 2)))]
pub struct Net {
    #[layer(linear(4 -> 2))]
    fc: Linear,
}

fn main() {}
