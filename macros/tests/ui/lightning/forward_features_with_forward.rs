use fulmen::prelude::*;

#[derive(Module, LightningModule, Debug)]
#[lightning(input_shape = [1, 8, 8], forward = mine, forward_features = features)]
pub struct Net {
    #[layer(conv2d(1 -> 4, kernel = 3), relu)]
    conv: Conv2d,
    #[layer(linear(auto -> 2))]
    fc: Linear,
}

impl Net {
    fn mine(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(x).flatten(1, 3))
    }
    fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

fn main() {}
