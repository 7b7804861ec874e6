//! glibc malloc tuning for training. Training frees and reallocates the same large activation
//! and gradient buffers every step; glibc serves blocks above its mmap threshold with fresh
//! mappings and trims freed heap memory back to the OS, so each step page-faults its buffers in
//! again. Raising both thresholds keeps that memory in the process.

/// Raises glibc's mmap threshold to 32 MiB (its maximum) and its trim threshold to 1 GiB.
/// Returns whether the allocator took the settings (false off glibc Linux).
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters (glibc serializes it internally);
        // both arguments are plain integers within the documented ranges.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
