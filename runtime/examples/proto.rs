use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::max_pool2d;
use burn::tensor::{Device, Int, Tensor, TensorData};

#[derive(Module, Debug)]
struct Net {
    conv1: Conv2d,
    fc: Linear,
    #[module(skip)]
    tag: String,
}

fn main() {
    let dev = Device::flex();
    let mut net = Net { conv1: Conv2dConfig::new([3, 8], [3, 3]).init(&dev), fc: LinearConfig::new(8 * 15 * 15, 10).init(&dev), tag: "x".into() };
    println!("params {}", net.num_params());
    net = net.to_device(&dev.clone().autodiff()).train();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let b = 16;
    let x: Vec<f32> = (0..b * 3 * 32 * 32).map(|i| ((i * 7919) % 100) as f32 / 100.0).collect();
    let y: Vec<i64> = (0..b).map(|i| (i % 10) as i64).collect();
    for step in 0..5 {
        let xs = Tensor::<4>::from_data(TensorData::new(x.clone(), [b, 3, 32, 32]), &dev);
        let ys = Tensor::<1, Int>::from_data(TensorData::new(y.clone(), [b]), &dev);
        let h = relu(net.conv1.forward(xs));
        let h = max_pool2d(h, burn::tensor::ops::MaxPoolOptions::new([2, 2]));
        let h = h.flatten::<2>(1, 3);
        let out = log_softmax(net.fc.forward(h), 1);
        let loss = out.clone().gather(1, ys.clone().reshape([b, 1])).mean().neg();
        let acc = out.argmax(1).flatten::<1>(0, 1).equal(ys).int().sum().float() / (b as f32);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        println!("step {step} loss {} acc {} autodiff {}", loss.detach().into_scalar::<f32>(), acc.into_scalar::<f32>(), net.fc.weight.val().is_autodiff());
    }
    let v = net.valid();
    println!("valid autodiff {}", v.fc.weight.val().is_autodiff());
    let rec = v.clone().into_record().into_bytes().unwrap();
    println!("record bytes {}", rec.len());
    let ob = optim.into_bytes().unwrap();
    println!("optim bytes {}", ob.len());
}
