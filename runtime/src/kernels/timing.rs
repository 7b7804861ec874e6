//! Time spent in fulmen's own ops, by kind, for the step-split benchmark (and anyone asking where
//! a step's time goes). Off by default: then [`measure`] costs one relaxed atomic load. On, each
//! measured call adds its wall time to a process-wide counter (calls on several threads add up).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A kind of work that fulmen times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// conv2d forward passes.
    ConvForward,
    /// conv2d gradients.
    ConvBackward,
    /// Max-pool forward passes.
    PoolForward,
    /// Max-pool gradients.
    PoolBackward,
    /// ReLU forward passes.
    ReluForward,
    /// ReLU gradients.
    ReluBackward,
    /// Linear layers' forward passes (`nn::linear_forward`).
    LinearForward,
    /// Optimizer updates (fused Adam).
    OptimizerUpdate,
    /// The training thread waiting for the loader's next batch.
    DataWait,
}

impl Op {
    /// Every kind, in the order of a step.
    pub const ALL: [Op; 9] = [
        Op::DataWait,
        Op::ConvForward,
        Op::ReluForward,
        Op::PoolForward,
        Op::LinearForward,
        Op::ConvBackward,
        Op::ReluBackward,
        Op::PoolBackward,
        Op::OptimizerUpdate,
    ];

    /// A short label.
    pub fn name(self) -> &'static str {
        match self {
            Op::ConvForward => "conv forward",
            Op::ConvBackward => "conv backward",
            Op::PoolForward => "max-pool forward",
            Op::PoolBackward => "max-pool backward",
            Op::ReluForward => "relu forward",
            Op::ReluBackward => "relu backward",
            Op::LinearForward => "linear forward",
            Op::OptimizerUpdate => "optimizer update",
            Op::DataWait => "waiting for data",
        }
    }

    fn index(self) -> usize {
        Op::ALL.iter().position(|op| *op == self).expect("every op is listed")
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; Op::ALL.len()] = [const { AtomicU64::new(0) }; Op::ALL.len()];

/// Turns timing on or off for the whole process.
pub fn set_enabled(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Runs `f`, adding its wall time to `op`'s total when timing is on.
#[inline]
pub fn measure<T>(op: Op, f: impl FnOnce() -> T) -> T {
    if !ON.load(Ordering::Relaxed) {
        return f();
    }
    let start = Instant::now();
    let out = f();
    NANOS[op.index()].fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

/// The totals so far, per kind (in [`Op::ALL`]'s order), and sets them back to zero.
pub fn take() -> [(Op, Duration); Op::ALL.len()] {
    Op::ALL.map(|op| (op, Duration::from_nanos(NANOS[op.index()].swap(0, Ordering::Relaxed))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Other tests may run kernels meanwhile, so this checks lower bounds only.)
    #[test]
    fn measured_time_adds_up_per_kind_while_on() {
        set_enabled(true);
        measure(Op::ConvForward, || std::thread::sleep(Duration::from_millis(5)));
        let value = measure(Op::OptimizerUpdate, || 7);
        set_enabled(false);
        let totals = take();
        let of = |op| totals.iter().find(|(o, _)| *o == op).unwrap().1;
        assert_eq!(value, 7);
        assert!(of(Op::ConvForward) >= Duration::from_millis(5), "{totals:?}");
    }
}
