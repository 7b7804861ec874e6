//! Choosing the device: `auto`, `cpu` (Burn's flex backend), `cuda` or `wgpu`. Burn 0.22 devices
//! are runtime values, so every accelerator runs the same code; only what is compiled in differs.

use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// Where to train, as Lightning's `accelerator` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accelerator {
    /// CUDA when fulmen is built with the `cuda` feature, else CPU.
    #[default]
    Auto,
    /// The CPU, through Burn's flex backend (SIMD + rayon).
    Cpu,
    /// An NVIDIA GPU through burn-cuda (`--features cuda`).
    Cuda,
    /// A GPU through wgpu: Vulkan, Metal or DirectX (`--features wgpu`).
    Wgpu,
}

impl FromStr for Accelerator {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Accelerator::Auto),
            "cpu" => Ok(Accelerator::Cpu),
            "cuda" | "gpu" => Ok(Accelerator::Cuda),
            "wgpu" => Ok(Accelerator::Wgpu),
            other => Err(Error::Accelerator { requested: other.to_string(), reason: "unknown accelerator; use one of auto, cpu, cuda, wgpu".into() }),
        }
    }
}

impl std::fmt::Display for Accelerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accelerator::Auto => "auto",
            Accelerator::Cpu => "cpu",
            Accelerator::Cuda => "cuda",
            Accelerator::Wgpu => "wgpu",
        })
    }
}

impl Accelerator {
    /// The device for `devices` devices of this accelerator.
    pub fn device(self, devices: usize) -> Result<Device> {
        if devices != 1 {
            return Err(Error::Config(format!("devices = {devices}: this version trains on one device; set devices to 1")));
        }
        match self {
            Accelerator::Cpu => Ok(Device::flex()),
            Accelerator::Auto => Ok(Self::auto_device()),
            Accelerator::Cuda => Self::cuda_device(),
            Accelerator::Wgpu => Self::wgpu_device(),
        }
    }

    #[cfg(feature = "cuda")]
    fn auto_device() -> Device {
        Device::cuda(0)
    }
    #[cfg(not(feature = "cuda"))]
    fn auto_device() -> Device {
        Device::flex()
    }

    #[cfg(feature = "cuda")]
    fn cuda_device() -> Result<Device> {
        Ok(Device::cuda(0))
    }
    #[cfg(not(feature = "cuda"))]
    fn cuda_device() -> Result<Device> {
        Err(Error::Accelerator {
            requested: "cuda".into(),
            reason: "fulmen was built without CUDA support; rebuild with `--features cuda` (needs the CUDA toolkit)".into(),
        })
    }

    #[cfg(feature = "wgpu")]
    fn wgpu_device() -> Result<Device> {
        Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
    }
    #[cfg(not(feature = "wgpu"))]
    fn wgpu_device() -> Result<Device> {
        Err(Error::Accelerator { requested: "wgpu".into(), reason: "fulmen was built without wgpu support; rebuild with `--features wgpu`".into() })
    }
}

/// Seeds Burn's random generator on `device` (weights drawn after this are reproducible).
pub fn seed_everything(seed: u64, device: &Device) {
    device.seed(seed);
}
