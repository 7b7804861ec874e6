//! CUDA devices, probed without touching cudarc's loader (which panics where the driver's
//! library is missing): the driver library is looked for first, then Burn counts the devices.

use std::sync::OnceLock;

use burn::tensor::{Device, DeviceType};

/// What this machine offers CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cuda {
    /// No `libcuda` (no NVIDIA driver).
    NoDriver,
    /// The driver is there with this many devices (possibly none).
    Devices(usize),
}

/// Probed once per process.
pub(crate) fn probe() -> Cuda {
    static PROBE: OnceLock<Cuda> = OnceLock::new();
    *PROBE.get_or_init(|| if driver_present() { Cuda::Devices(Device::enumerate(DeviceType::Cuda).len()) } else { Cuda::NoDriver })
}

/// Whether the dynamic loader finds the driver's library under the names cudarc tries.
#[cfg(unix)]
fn driver_present() -> bool {
    ["libcuda.so", "libcuda.so.1"].iter().any(|name| {
        let name = std::ffi::CString::new(*name).expect("no NUL in a library name");
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
            if handle.is_null() {
                false
            } else {
                libc::dlclose(handle);
                true
            }
        }
    })
}

/// Elsewhere Burn's count (which checks for the library itself) is the whole probe.
#[cfg(not(unix))]
fn driver_present() -> bool {
    true
}
