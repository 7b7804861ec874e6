//! The wgpu adapters of this machine, found once per process without opening a device, on the
//! graphics API Burn's wgpu runtime settles on (the first of Vulkan, DirectX 12, OpenGL — Metal on
//! macOS — that has a GPU, else the first with any adapter), so an adapter named here is the one
//! `Device::wgpu(kind)` opens.

use std::sync::OnceLock;

use burn::tensor::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};

/// One wgpu adapter.
#[derive(Debug, Clone)]
pub(crate) struct Adapter {
    /// The driver's name for it ("NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// The graphics API it is reached through.
    pub api: wgpu::Backend,
    /// A CPU rasterizer (Mesa's lavapipe, WARP, SwiftShader) rather than a GPU.
    pub software: bool,
    /// How Burn selects it, where it can (`DeviceKind` has no variant for an `Other` adapter).
    kind: Option<DeviceKind>,
}

impl Adapter {
    /// The Burn device on this adapter.
    pub fn device(&self) -> Option<Device> {
        self.kind.clone().map(Device::wgpu)
    }
    /// "NVIDIA H200 (Vulkan)".
    pub fn describe(&self) -> String {
        format!("{} ({:?})", self.name, self.api)
    }
}

/// Every adapter on the settled API, in the order wgpu lists them.
pub(crate) fn adapters() -> &'static [Adapter] {
    static ADAPTERS: OnceLock<Vec<Adapter>> = OnceLock::new();
    ADAPTERS.get_or_init(|| settle().map(|(api, infos)| with_kinds(api, &infos)).unwrap_or_default())
}

/// The GPUs (hardware adapters Burn can select), in wgpu's order: `devices = [i]` is the i-th.
pub(crate) fn gpus() -> Vec<&'static Adapter> {
    adapters().iter().filter(|a| !a.software && a.kind.is_some()).collect()
}

/// The software adapter, used only when `accelerator = wgpu` is asked for and no GPU exists.
pub(crate) fn software() -> Option<&'static Adapter> {
    adapters().iter().find(|a| a.software)
}

fn candidates() -> Vec<wgpu::Backend> {
    if cfg!(target_os = "macos") { vec![wgpu::Backend::Metal] } else { vec![wgpu::Backend::Vulkan, wgpu::Backend::Dx12, wgpu::Backend::Gl] }
}

fn settle() -> Option<(wgpu::Backend, Vec<wgpu::AdapterInfo>)> {
    let mut software_only = None;
    for api in candidates() {
        let infos = enumerate(api);
        if infos.iter().any(|info| info.device_type != wgpu::DeviceType::Cpu) {
            return Some((api, infos));
        }
        if software_only.is_none() && !infos.is_empty() {
            software_only = Some((api, infos));
        }
    }
    software_only
}

fn enumerate(api: wgpu::Backend) -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends: api.into(), ..wgpu::InstanceDescriptor::new_without_display_handle() });
    ready(instance.enumerate_adapters(api.into())).iter().map(wgpu::Adapter::get_info).collect()
}

/// Burn counts adapters per type: the second discrete GPU is `DiscreteGpu(1)`.
fn with_kinds(api: wgpu::Backend, infos: &[wgpu::AdapterInfo]) -> Vec<Adapter> {
    let mut seen = [0usize; 3];
    infos
        .iter()
        .map(|info| {
            let mut nth = |slot: usize| {
                seen[slot] += 1;
                seen[slot] - 1
            };
            let kind = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => Some(DeviceKind::DiscreteGpu(nth(0))),
                wgpu::DeviceType::IntegratedGpu => Some(DeviceKind::IntegratedGpu(nth(1))),
                wgpu::DeviceType::VirtualGpu => Some(DeviceKind::VirtualGpu(nth(2))),
                wgpu::DeviceType::Cpu => Some(DeviceKind::Cpu),
                wgpu::DeviceType::Other => None,
            };
            Adapter { name: info.name.clone(), api, software: info.device_type == wgpu::DeviceType::Cpu, kind }
        })
        .collect()
}

/// Native wgpu's enumeration future is ready at once; poll it to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}
