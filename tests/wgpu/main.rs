//! The GPU code path on a real wgpu device: in CI, Mesa's lavapipe (a conformant software Vulkan
//! device running the same shaders a GPU would). Burn's own conv, pool and matmul kernels instead
//! of fulmen's flex kernels, autodiff on a CubeCL device, device-side metrics and `log`, loaders
//! moving batches to the device, checkpoints written from device tensors and read on another.
//! Built only with `--features wgpu` (README: Run the tests).

#[path = "../common/seed_cnn.rs"]
mod seed_cnn;

#[allow(dead_code)]
#[path = "../integration/probe.rs"]
mod probe;

mod agreement;
mod example;
mod portability;
mod selection;
mod training;

use std::sync::Mutex;

use fulmen::burn::module::{ModuleVisitor, Param};
use fulmen::prelude::*;

use seed_cnn::{SeedCnn, SeedConfig};

/// The wgpu device fulmen selects when asked for `wgpu` (lavapipe in CI).
pub fn wgpu() -> Device {
    let device = fulmen::Accelerator::Wgpu.select(&fulmen::Devices::Auto).unwrap_or_else(|e| panic!("{e}")).device;
    assert!(device != Device::flex(), "accelerator = wgpu selected the CPU");
    device
}

/// The tutorial CNN with weights drawn on flex from `seed` (Burn's generator is process-wide,
/// so draws take turns). Burn initializes parameters lazily, where they are first used, and a
/// parameter moved before that is drawn on its new device: reading them here draws them on flex.
pub fn seed_cnn(seed: u64) -> SeedCnn {
    static DRAWS: Mutex<()> = Mutex::new(());
    let _turn = DRAWS.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    fulmen::seed_everything(seed, &device);
    let model = SeedCnn::new(SeedConfig::new([3, 32, 32], 10).with_learning_rate(1e-3), &device).unwrap();
    weights(&model);
    model
}

/// Every float parameter of `module`, read to the host, in visiting order.
pub fn weights<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Read(Vec<Vec<f32>>);
    impl ModuleVisitor for Read {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.val().into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
    let mut read = Read(Vec::new());
    module.visit(&mut read);
    read.0
}

/// The largest difference between `a` and `b`, relative to `b`'s largest magnitude.
pub fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(f32::MIN_POSITIVE, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}
