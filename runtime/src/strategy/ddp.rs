//! The `ddp` strategy as one process runs it: its place in the job, its engine, and the
//! operations the Trainer calls where the replicas must agree. Every collective is named, so
//! a failure says where each rank was.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData, Transaction};

use super::DdpStrategy;
use super::collective::{Collective, ReduceOp};
use super::environment::ClusterEnvironment;
use super::shard::Shard;
use crate::error::{Error, Result};

/// One process's handle on a data-parallel run (cheap to clone).
#[derive(Clone)]
pub(crate) struct Ddp {
    inner: Arc<Inner>,
}

struct Inner {
    env: ClusterEnvironment,
    engine: &'static dyn Collective,
    timeout: Duration,
    /// The ranks agreed, at the latest gradient all-reduce, that one of them was asked to stop.
    stop_agreed: AtomicBool,
}

impl Ddp {
    /// Joins the job described by `env` through the engine this build has.
    pub fn start(env: ClusterEnvironment, options: &DdpStrategy) -> Result<Ddp> {
        let engine = engine(&env)?;
        if engine.world_size() != env.world_size || engine.rank() != env.rank {
            return Err(Error::Distributed {
                rank: env.rank,
                reason: format!(
                    "{} says rank {} of {}, but the engine ({}) sees rank {} of {}: start every process with the MPI launcher \
                     (`mpirun -np {}` or `srun`), which connects them",
                    env.launcher,
                    env.rank,
                    env.world_size,
                    engine.describe(),
                    engine.rank(),
                    engine.world_size(),
                    env.world_size
                ),
            });
        }
        Ok(Ddp { inner: Arc::new(Inner { env, engine, timeout: options.timeout, stop_agreed: AtomicBool::new(false) }) })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.inner.env.rank
    }
    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.inner.env.world_size
    }
    /// The launcher's view of this process.
    pub fn env(&self) -> &ClusterEnvironment {
        &self.inner.env
    }

    /// Lightning's start-up line, printed by every rank.
    pub fn summary(&self) -> String {
        let env = &self.inner.env;
        let node = env.node_rank.map(|n| format!(", node {n}")).unwrap_or_default();
        format!(
            "Initializing distributed: GLOBAL_RANK: {}, MEMBER: {}/{} (local rank {}{node}; {}; launched by {})",
            env.rank,
            env.rank + 1,
            env.world_size,
            env.local_rank,
            self.inner.engine.describe(),
            env.launcher
        )
    }

    /// This rank's share of a loader: equal shares for training, exact ones for evaluation.
    pub fn shard(&self, training: bool) -> Shard {
        Shard { rank: self.rank(), world_size: self.world_size(), equal: training }
    }

    /// Whether the ranks agreed at the latest gradient all-reduce that one was asked to stop
    /// (Ctrl-C, SIGTERM): every rank then stops before the same batch.
    pub fn stop_agreed(&self) -> bool {
        self.inner.stop_agreed.load(Ordering::SeqCst)
    }

    /// Forgets an agreed stop (each stage starts uninterrupted).
    pub fn clear_stop(&self) {
        self.inner.stop_agreed.store(false, Ordering::SeqCst);
    }

    /// Rank 0's weights, on every rank (the others' are replaced), as Lightning's DDP starts.
    pub fn broadcast_module<M: Module>(&self, model: M) -> Result<M> {
        let mut read = ReadParams { transaction: Transaction::default() };
        model.visit(&mut read);
        let values: Vec<f32> = read.transaction.execute().into_iter().flat_map(|data| data.convert::<f32>().iter::<f32>().collect::<Vec<_>>()).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let what = "the broadcast of rank 0's initial weights";
        let received = self.inner.engine.broadcast(bytes, what, self.inner.timeout)?;
        if received.len() != values.len() * 4 {
            return Err(self.error(format!(
                "{what}: rank 0's model has {} parameters, this rank's {}: every rank must build the same model (the same hyperparameters)",
                received.len() / 4,
                values.len()
            )));
        }
        let values: Vec<f32> = received.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(model.map(&mut WriteParams { values: &values, offset: 0 }))
    }

    /// Averages the gradients of `ids` (every parameter when `None`) across the ranks, in
    /// place, and agrees whether a rank was asked to stop (one all-reduce).
    pub fn average_gradients<M: Module>(&self, model: &M, grads: &mut GradientsParams, ids: Option<&HashSet<ParamId>>, what: &str) -> Result<()> {
        let mut buffer = crate::grad::to_host(model, grads, ids);
        buffer.push(if crate::interrupt::requested() { 1.0 } else { 0.0 });
        let summed = self.inner.engine.sum_f32(buffer, what, self.inner.timeout)?;
        let (values, stop) = summed.split_at(summed.len() - 1);
        if stop[0] > 0.0 {
            self.inner.stop_agreed.store(true, Ordering::SeqCst);
        }
        crate::grad::from_host(model, grads, values, ids, 1.0 / self.world_size() as f32);
        Ok(())
    }

    /// Whether `flag` holds on any rank.
    pub fn any(&self, flag: bool, what: &str) -> Result<bool> {
        Ok(self.reduce(vec![if flag { 1.0 } else { 0.0 }], ReduceOp::Max, what)?[0] > 0.0)
    }

    /// `values` combined element-wise over the ranks.
    pub fn reduce(&self, values: Vec<f64>, op: ReduceOp, what: &str) -> Result<Vec<f64>> {
        self.inner.engine.reduce_f64(values, op, what, self.inner.timeout)
    }

    /// Every rank's `bytes`, by rank.
    pub fn gather(&self, bytes: Vec<u8>, what: &str) -> Result<Vec<Vec<u8>>> {
        self.inner.engine.all_gather(bytes, what, self.inner.timeout)
    }

    /// Rank 0's path (its log folder, say), on every rank.
    pub fn broadcast_path(&self, path: Option<PathBuf>, what: &str) -> Result<Option<PathBuf>> {
        let bytes = path.map(|p| p.to_string_lossy().into_owned().into_bytes()).unwrap_or_default();
        let received = self.inner.engine.broadcast(bytes, what, self.inner.timeout)?;
        Ok((!received.is_empty()).then(|| PathBuf::from(String::from_utf8_lossy(&received).into_owned())))
    }

    /// Returns once every rank has arrived at `what`.
    pub fn barrier(&self, what: &str) -> Result<()> {
        self.inner.engine.barrier(what, self.inner.timeout)
    }

    /// Tells the other ranks that this one failed with `error`, so they stop instead of waiting.
    pub fn announce_failure(&self, error: &Error) {
        self.inner.engine.announce_failure(&error.to_string());
    }

    fn error(&self, reason: String) -> Error {
        Error::Distributed { rank: self.rank(), reason }
    }
}

/// The engine of this build for `env`.
#[cfg(feature = "mpi")]
fn engine(env: &ClusterEnvironment) -> Result<&'static dyn Collective> {
    super::mpi::Mpi::get().map(|mpi| mpi as &'static dyn Collective).map_err(|e| match e {
        Error::Distributed { reason, .. } => Error::Distributed { rank: env.rank, reason },
        other => other,
    })
}

/// The engine of this build for `env`: none without the `mpi` feature.
#[cfg(not(feature = "mpi"))]
fn engine(env: &ClusterEnvironment) -> Result<&'static dyn Collective> {
    Err(Error::Distributed {
        rank: env.rank,
        reason: format!(
            "{} started {} processes, and this build of fulmen has no distributed engine: build with `--features mpi` \
             (Debian/Ubuntu: apt-get install libopenmpi-dev openmpi-bin libclang-dev; README: Data parallel)",
            env.launcher, env.world_size
        ),
    })
}

/// Reads every float parameter, in the model's order.
struct ReadParams {
    transaction: Transaction,
}

impl ModuleVisitor for ReadParams {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.transaction = std::mem::take(&mut self.transaction).register(param.val());
    }
}

/// Replaces every float parameter with the next values, keeping its id, dtype and device.
struct WriteParams<'a> {
    values: &'a [f32],
    offset: usize,
}

impl ModuleMapper for WriteParams<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let shape = tensor.shape();
        let size = shape.num_elements();
        let values = self.values[self.offset..self.offset + size].to_vec();
        self.offset += size;
        let dtype = tensor.dtype();
        let trainable = tensor.is_require_grad();
        let new = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device());
        let new = if dtype == DType::F32 { new } else { new.cast(dtype) };
        let new = if trainable { new.require_grad() } else { new };
        Param::from_mapped_value(id, new, mapper)
    }
}
