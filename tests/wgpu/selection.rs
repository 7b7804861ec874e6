//! Choosing the device as Lightning does: `auto` takes a GPU, never a software rasterizer; `wgpu`
//! takes the software device when nothing else exists, and says so; `devices` picks by index; a
//! machine without any adapter gets an error naming the fix, not a panic inside Burn.

use std::process::Command;

use fulmen::prelude::*;
use fulmen::{Accelerator, Devices};

#[test]
fn auto_takes_a_gpu_or_the_cpu_but_never_the_software_device() {
    let auto = Accelerator::Auto.select(&Devices::Auto).unwrap();
    if auto.summary.starts_with("GPU available: True") {
        assert!(auto.device != Device::flex() && auto.summary.contains("used: True (wgpu: "), "{}", auto.summary);
    } else {
        assert!(auto.device == Device::flex(), "{}", auto.summary);
        assert!(auto.summary.contains("only the software device") && auto.summary.ends_with("used: False (CPU)"), "{}", auto.summary);
        let asked = Accelerator::Wgpu.select(&Devices::Auto).unwrap();
        assert!(asked.device != Device::flex(), "{}", asked.summary);
        assert!(asked.summary.contains("used: False (wgpu on the software device") && asked.summary.contains("(Vulkan)"), "{}", asked.summary);
    }
    let cpu = Accelerator::Cpu.select(&Devices::Count(1)).unwrap();
    assert!(cpu.device == Device::flex() && cpu.summary.ends_with("used: False (CPU)"), "{}", cpu.summary);
}

#[test]
fn devices_selects_one_adapter_by_index_and_refuses_what_is_not_there() {
    let err = Accelerator::Wgpu.select(&Devices::Indices(vec![7])).unwrap_err().to_string();
    assert!(err.contains("accelerator `wgpu device 7` is not available") && err.contains("use an index below"), "{err}");
    let err = Accelerator::Wgpu.select(&Devices::Count(2)).unwrap_err().to_string();
    assert!(err.contains("strategy = ddp, one process per device"), "{err}");
    let err = Accelerator::Cuda.select(&Devices::Auto).unwrap_err().to_string();
    assert!(err.contains("accelerator `cuda` is not available") && err.contains("--features cuda"), "{err}");
}

/// Runs `test` of this binary in a child process that sees no Vulkan or EGL driver.
fn without_drivers(test: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("FULMEN_TEST_WITHOUT_DRIVERS", "1")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .output()
        .unwrap()
}

#[test]
fn without_any_adapter_wgpu_is_an_error_naming_the_fix_and_auto_falls_back_to_the_cpu() {
    if std::env::var_os("FULMEN_TEST_WITHOUT_DRIVERS").is_none() {
        let child = without_drivers("selection::without_any_adapter_wgpu_is_an_error_naming_the_fix_and_auto_falls_back_to_the_cpu");
        let out = String::from_utf8_lossy(&child.stdout).into_owned() + &String::from_utf8_lossy(&child.stderr);
        assert!(child.status.success() && out.contains("1 passed"), "{out}");
        return;
    }
    let err = Accelerator::Wgpu.select(&Devices::Auto).unwrap_err().to_string();
    assert!(err.contains("wgpu finds no Vulkan, Metal, DirectX 12 or OpenGL adapter") && err.contains("mesa-vulkan-drivers"), "{err}");
    let auto = Accelerator::Auto.select(&Devices::Auto).unwrap();
    assert!(auto.device == Device::flex(), "{}", auto.summary);
    assert_eq!(auto.summary, "GPU available: False (no wgpu adapter), used: False (CPU)");
    let err = Trainer::<crate::seed_cnn::SeedCnn>::builder().accelerator(Accelerator::Wgpu).build().err().unwrap().to_string();
    assert!(err.contains("wgpu finds no"), "{err}");
}

#[test]
fn a_precision_the_adapter_cannot_compute_in_is_refused_naming_the_adapter() {
    let precision = "bf16-mixed".parse().unwrap();
    let err = Trainer::<crate::seed_cnn::SeedCnn>::builder().accelerator(Accelerator::Wgpu).precision(precision).build().err().unwrap().to_string();
    assert!(err.contains("precision bf16-mixed computes in BF16, which wgpu adapter ") && err.contains("does not support; use 32-true"), "{err}");
}
