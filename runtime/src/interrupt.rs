//! Ctrl-C (SIGINT), and SIGTERM and SIGHUP (how SLURM, Kubernetes and a closed terminal ask a
//! job to stop): the first one asks the running stage to stop at the next batch, gracefully
//! (`on_exception` runs, `ModelCheckpoint` with `save_last` writes `last.ckpt`, loggers are
//! finalized as interrupted, `fit` returns `Error::Interrupted`); a second one exits at once.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the handler, once per process. Returns whether fulmen's handler is in place (it
/// is not when the program installed its own with the `ctrlc` crate first).
pub fn install() -> bool {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    INSTALL.call_once(|| {
        let ok = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nInterrupted again: exiting now.");
                std::process::exit(130);
            }
            eprintln!("\nInterrupted (SIGINT/SIGTERM): stopping after the current batch (press Ctrl-C again to exit at once).");
        })
        .is_ok();
        INSTALLED.store(ok, Ordering::SeqCst);
    });
    INSTALLED.load(Ordering::SeqCst)
}

/// Asks the running stage to stop, as Ctrl-C does (for programs with their own handler).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Forgets an earlier request (each stage starts uninterrupted).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}
