//! Exact-resume tests and seeded training runs (a GAN's), in their own process: Burn's device
//! generator is process-wide, so any other test drawing random numbers at the same time
//! (weight init, dropout, noise) would change what these runs draw. Within this binary the
//! tests take turns (`exclusive`).

#[path = "../integration/probe.rs"]
#[allow(dead_code)]
mod probe;

mod augmentation;
mod cases;
mod gan;
mod precision;

/// Serializes the tests of this binary.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
