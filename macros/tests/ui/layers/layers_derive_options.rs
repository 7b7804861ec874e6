use fulmen::prelude::*;

#[derive(Module, Debug, Layers)]
#[layers(input_shape = [3, 8, 8], loss = nll)]
pub struct Part {
    #[layer(conv2d(3 -> 8, kernel = 3), relu)]
    conv: Conv2d,
}

fn main() {}
