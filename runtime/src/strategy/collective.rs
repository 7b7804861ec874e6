//! The collective operations data-parallel training needs, as an engine provides them. Each
//! names what it is for (`what`, as "the gradient all-reduce of step 12"), so a failure says
//! where every rank was, and each fails — never hangs — when another rank failed, died or did
//! not arrive within the timeout.

use std::time::Duration;

use crate::error::Result;

/// How the values of the ranks combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum.
    Sum,
    /// Element-wise maximum.
    Max,
    /// Element-wise minimum.
    Min,
}

/// An engine's collectives over every rank of the job.
pub trait Collective: Send + Sync {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// The engine and the machine, for the start-up line ("MPI on host-1").
    fn describe(&self) -> String;
    /// Sums `values` element-wise over the ranks; every rank gets the sum.
    fn sum_f32(&self, values: Vec<f32>, what: &str, timeout: Duration) -> Result<Vec<f32>>;
    /// Combines `values` element-wise over the ranks with `op`; every rank gets the result.
    fn reduce_f64(&self, values: Vec<f64>, op: ReduceOp, what: &str, timeout: Duration) -> Result<Vec<f64>>;
    /// Rank 0's `bytes`, on every rank (the others' are ignored).
    fn broadcast(&self, bytes: Vec<u8>, what: &str, timeout: Duration) -> Result<Vec<u8>>;
    /// Every rank's `bytes`, by rank.
    fn all_gather(&self, bytes: Vec<u8>, what: &str, timeout: Duration) -> Result<Vec<Vec<u8>>>;
    /// Returns once every rank has arrived.
    fn barrier(&self, what: &str, timeout: Duration) -> Result<()>;
    /// Tells the other ranks that this one failed, so that they stop with `reason` instead of
    /// waiting for it. Best effort: it does not wait for them.
    fn announce_failure(&self, reason: &str);
}
