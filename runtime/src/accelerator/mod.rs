//! Choosing the device as Lightning's accelerator connector does: `auto`, `cpu` (Burn's flex
//! backend), `cuda` or `wgpu`, and `devices`. Burn 0.22 devices are runtime values, so every
//! accelerator runs the same code; only what is compiled in differs. What is there is probed
//! before a device is opened, so a missing driver is an error, not a panic inside Burn.

mod devices;

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "wgpu")]
mod wgpu;

use std::str::FromStr;

use burn::tensor::Device;

pub use devices::Devices;

use crate::error::{Error, Result};

/// Where to train, as Lightning's `accelerator` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accelerator {
    /// A CUDA device when built with `cuda` and one is present, else a wgpu GPU when built
    /// with `wgpu` and one is present, else the CPU.
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

/// The device a Trainer runs on, and Lightning's one-line summary of the choice.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    /// The device.
    pub device: Device,
    /// What it is, for messages: "the CPU", "CUDA device 0", "wgpu adapter llvmpipe (…) (Vulkan)".
    pub name: String,
    /// "GPU available: True (wgpu: NVIDIA H200 (Vulkan)), used: True", as Lightning prints it.
    pub summary: String,
    /// The CUDA device's index, when it is one (data-parallel ranks group their devices by it).
    pub cuda_index: Option<usize>,
}

impl Accelerator {
    /// Picks the device as Lightning does. `auto`: a CUDA device when CUDA is compiled in and a
    /// driver and device are present, else a wgpu GPU when wgpu is compiled in, else the CPU (a
    /// software Vulkan device only when `wgpu` is asked for). `devices` picks one by index.
    pub fn select(self, devices: &Devices) -> Result<SelectedDevice> {
        self.choose(devices, false)
    }

    /// The device of the process with `local_rank` among a data-parallel run's processes on
    /// this machine: its entry of `devices` (a count or `auto`: the `local_rank`-th device;
    /// indices: the `local_rank`-th index). On the CPU every process uses the CPU.
    pub fn select_for_rank(self, devices: &Devices, local_rank: usize) -> Result<SelectedDevice> {
        self.choose(&devices.replica(local_rank)?, true)
    }

    /// `replica`: one of several processes (the CPU is then shared, not counted as devices).
    fn choose(self, devices: &Devices, replica: bool) -> Result<SelectedDevice> {
        if self == Accelerator::Cpu {
            // Asked for the CPU: no driver is loaded, so none can print or fail.
            if !replica {
                devices.single("cpu", 1)?;
            }
            let summary = "GPU available: not checked (accelerator = cpu), used: False (CPU)".into();
            return Ok(SelectedDevice { device: Device::flex(), name: CPU.into(), summary, cuda_index: None });
        }
        let gpus = Gpus::probe();
        let chosen = match self {
            Accelerator::Cuda => Some(gpus.cuda(devices)?),
            Accelerator::Wgpu => Some(gpus.wgpu(devices)?),
            _ => gpus.auto(devices)?,
        };
        let (device, used) = match chosen {
            Some((device, used)) => (device, Some(used)),
            None => {
                if !replica {
                    devices.single("cpu", 1)?;
                }
                (Device::flex(), None)
            }
        };
        let name = used.as_ref().map_or(CPU.to_string(), |used| used.device.clone());
        let cuda_index = used.as_ref().and_then(|used| used.cuda);
        let summary = match used {
            Some(Used { name, gpu: true, .. }) => format!("GPU available: {}, used: True ({name})", gpus.available()),
            Some(Used { name, gpu: false, .. }) => format!("GPU available: {}, used: False ({name})", gpus.available()),
            None => format!("GPU available: {}, used: False (CPU)", gpus.available()),
        };
        Ok(SelectedDevice { device, name, summary, cuda_index })
    }
}

const CPU: &str = "the CPU (flex)";

/// The device a selection took, for the summary.
struct Used {
    name: String,
    /// Its short name, for messages.
    device: String,
    /// A hardware GPU (not a software rasterizer).
    gpu: bool,
    /// Its index, for a CUDA device.
    cuda: Option<usize>,
}

/// What this build and machine offer, found once per process.
struct Gpus {
    #[cfg(feature = "cuda")]
    cuda: cuda::Cuda,
    #[cfg(feature = "wgpu")]
    wgpu: Vec<&'static wgpu::Adapter>,
    #[cfg(feature = "wgpu")]
    software: Option<&'static wgpu::Adapter>,
}

impl Gpus {
    fn probe() -> Self {
        Gpus {
            #[cfg(feature = "cuda")]
            cuda: cuda::probe(),
            #[cfg(feature = "wgpu")]
            wgpu: wgpu::gpus(),
            #[cfg(feature = "wgpu")]
            software: wgpu::software(),
        }
    }

    /// "True (cuda: 2 devices)", "False (only the software device llvmpipe …)", "False (no
    /// NVIDIA driver: libcuda not found)".
    fn available(&self) -> String {
        // Per backend compiled in: Ok(what it found) or Err(why it found nothing).
        let probes: Vec<std::result::Result<String, String>> = vec![
            #[cfg(feature = "cuda")]
            match self.cuda {
                cuda::Cuda::Devices(n) if n > 0 => Ok(format!("cuda: {n} device{}", plural(n))),
                cuda::Cuda::Devices(_) => Err("the NVIDIA driver sees no CUDA device".to_string()),
                cuda::Cuda::NoDriver => Err("no NVIDIA driver: libcuda not found".to_string()),
            },
            #[cfg(feature = "wgpu")]
            match (self.wgpu.is_empty(), self.software) {
                (false, _) => Ok(format!("wgpu: {}", self.wgpu.iter().map(|a| a.describe()).collect::<Vec<_>>().join(", "))),
                (true, Some(software)) => Err(format!("only the software device {}, used when accelerator = wgpu is asked for", software.describe())),
                (true, None) => Err("no wgpu adapter".to_string()),
            },
        ];
        let found: Vec<&str> = probes.iter().filter_map(|p| p.as_deref().ok()).collect();
        let missing: Vec<&str> = probes.iter().filter_map(|p| p.as_ref().err().map(String::as_str)).collect();
        match (found.is_empty(), missing.is_empty()) {
            (false, _) => format!("True ({})", found.join("; ")),
            (true, false) => format!("False ({})", missing.join("; ")),
            (true, true) => "False (built without the cuda and wgpu features)".to_string(),
        }
    }

    /// The GPU `auto` takes, if any.
    #[allow(unused_variables)]
    fn auto(&self, devices: &Devices) -> Result<Option<(Device, Used)>> {
        #[cfg(feature = "cuda")]
        if matches!(self.cuda, cuda::Cuda::Devices(n) if n > 0) {
            return self.cuda(devices).map(Some);
        }
        #[cfg(feature = "wgpu")]
        if !self.wgpu.is_empty() {
            return self.wgpu(devices).map(Some);
        }
        Ok(None)
    }

    #[cfg(feature = "cuda")]
    fn cuda(&self, devices: &Devices) -> Result<(Device, Used)> {
        let count = match self.cuda {
            cuda::Cuda::Devices(n) if n > 0 => n,
            cuda::Cuda::Devices(_) => {
                return Err(unavailable("cuda", "the NVIDIA driver is installed but sees no CUDA device; check `nvidia-smi`, or use --accelerator cpu"));
            }
            cuda::Cuda::NoDriver => {
                return Err(unavailable(
                    "cuda",
                    "no NVIDIA driver on this machine (libcuda.so was not found by the dynamic loader); install the driver, or use --accelerator cpu",
                ));
            }
        };
        let index = devices.single("cuda", count)?;
        Ok((
            Device::cuda(index),
            Used { name: format!("cuda: device {index} of {count}"), device: format!("CUDA device {index}"), gpu: true, cuda: Some(index) },
        ))
    }
    #[cfg(not(feature = "cuda"))]
    fn cuda(&self, _: &Devices) -> Result<(Device, Used)> {
        Err(unavailable("cuda", "fulmen was built without CUDA support; rebuild with `--features cuda` (README: Devices)"))
    }

    #[cfg(feature = "wgpu")]
    fn wgpu(&self, devices: &Devices) -> Result<(Device, Used)> {
        let adapter = if !self.wgpu.is_empty() {
            self.wgpu[devices.single("wgpu", self.wgpu.len())?]
        } else if let Some(software) = self.software {
            devices.single("wgpu", 1)?;
            software
        } else {
            return Err(unavailable(
                "wgpu",
                "wgpu finds no Vulkan, Metal, DirectX 12 or OpenGL adapter; install the GPU's driver, or Mesa's software Vulkan \
                 (Debian: mesa-vulkan-drivers) to run wgpu on the CPU, or use --accelerator cpu",
            ));
        };
        let device = adapter.device().expect("gpus() and software() list only adapters Burn can select");
        let name = if adapter.software {
            format!("wgpu on the software device {}: slow, for testing the GPU path", adapter.describe())
        } else {
            format!("wgpu: {}", adapter.describe())
        };
        Ok((device, Used { name, device: format!("wgpu adapter {}", adapter.describe()), gpu: !adapter.software, cuda: None }))
    }
    #[cfg(not(feature = "wgpu"))]
    fn wgpu(&self, _: &Devices) -> Result<(Device, Used)> {
        Err(unavailable("wgpu", "fulmen was built without wgpu support; rebuild with `--features wgpu`"))
    }
}

fn unavailable(requested: &str, reason: &str) -> Error {
    Error::Accelerator { requested: requested.into(), reason: reason.into() }
}

#[cfg(feature = "cuda")]
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Seeds Burn's random generator on `device` (weights drawn after this are reproducible).
pub fn seed_everything(seed: u64, device: &Device) {
    device.seed(seed);
}
