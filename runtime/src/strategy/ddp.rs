//! The `ddp` strategy as one process runs it: its place in the job, its engine, and the
//! operations the Trainer calls where the replicas must agree. Every collective is named, so
//! a failure says where each rank was.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData, Transaction};

use super::bucket;
use super::collective::{Collective, ReduceOp};
use super::environment::ClusterEnvironment;
use super::nccl::{self, Place};
use super::shard::Shard;
use super::{DdpStrategy, ProcessGroupBackend};
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
    /// The gradient engine asked for (`None`: NCCL where it runs, else MPI).
    wanted: Option<ProcessGroupBackend>,
    /// The gradient engine, once the ranks have told each other their devices (MPI until then).
    gradients: OnceLock<Gradients>,
    /// The ranks agreed, at the latest gradient all-reduce, that one of them was asked to stop.
    stop_agreed: AtomicBool,
}

/// What sums the gradients' bucket across the ranks.
enum Gradients {
    /// The MPI engine, through the host.
    Host,
    /// NCCL, device to device.
    #[cfg(feature = "cuda")]
    Nccl(nccl::Nccl),
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
        let inner = Inner {
            env,
            engine,
            timeout: options.timeout,
            wanted: options.process_group_backend,
            gradients: OnceLock::new(),
            stop_agreed: AtomicBool::new(false),
        };
        Ok(Ddp { inner: Arc::new(inner) })
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
            "Initializing distributed: GLOBAL_RANK: {}, MEMBER: {}/{} (local rank {}{node}; {}; gradients over {}; launched by {})",
            env.rank,
            env.rank + 1,
            env.world_size,
            env.local_rank,
            self.inner.engine.describe(),
            self.gradient_engine(),
            env.launcher
        )
    }

    /// The engine the gradients are all-reduced on.
    pub fn gradient_engine(&self) -> ProcessGroupBackend {
        match self.inner.gradients.get() {
            #[cfg(feature = "cuda")]
            Some(Gradients::Nccl(_)) => ProcessGroupBackend::Nccl,
            _ => ProcessGroupBackend::Mpi,
        }
    }

    /// Chooses the gradient engine once this rank's device is known (`cuda`: its index when
    /// it is a CUDA device): the ranks tell each other where they train, and all take NCCL
    /// when every one trains on its own CUDA device of one machine (or as asked).
    pub fn connect_gradients(&self, cuda: Option<usize>) -> Result<()> {
        let what = "the exchange of the ranks' devices";
        let places = self
            .gather(Place::here(cuda).encode(), what)?
            .iter()
            .enumerate()
            .map(|(rank, bytes)| {
                Place::decode(bytes).ok_or_else(|| self.error(format!("{what}: rank {rank}'s answer is unreadable: run the same program on every rank")))
            })
            .collect::<Result<Vec<_>>>()?;
        let gradients = match nccl::choose(&places, self.inner.wanted).map_err(|reason| self.error(reason))? {
            ProcessGroupBackend::Mpi => Gradients::Host,
            ProcessGroupBackend::Nccl => self.nccl(&places)?,
        };
        let _ = self.inner.gradients.set(gradients);
        Ok(())
    }

    /// The NCCL group of the ranks at `places`, bootstrapped at an address rank 0 picks.
    #[cfg(feature = "cuda")]
    fn nccl(&self, places: &[Place]) -> Result<Gradients> {
        let address = if self.rank() == 0 { nccl::Nccl::bootstrap_address().map_err(|reason| self.error(reason))? } else { String::new() };
        let address = self.inner.engine.broadcast(address.into_bytes(), "the broadcast of NCCL's bootstrap address", self.inner.timeout)?;
        Ok(Gradients::Nccl(nccl::Nccl::new(places, &String::from_utf8_lossy(&address))))
    }

    #[cfg(not(feature = "cuda"))]
    fn nccl(&self, _: &[Place]) -> Result<Gradients> {
        Err(self.error("NCCL needs a build with `--features cuda,mpi`".into()))
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
    /// place. First, over MPI, the ranks agree which parameters have a gradient on some rank
    /// and whether one was asked to stop (a small all-reduce, which also finds a rank that
    /// failed or died); then the gradients' bucket is summed by the gradient engine.
    pub fn average_gradients<M: Module>(&self, model: &M, grads: &mut GradientsParams, ids: Option<&HashSet<ParamId>>, what: &str) -> Result<()> {
        let mut flags = bucket::presence(model, grads, ids);
        flags.push(if crate::interrupt::requested() { 1.0 } else { 0.0 });
        let flags = self.inner.engine.sum_f32(flags, what, self.inner.timeout)?;
        let (present, stop) = flags.split_at(flags.len() - 1);
        if stop[0] > 0.0 {
            self.inner.stop_agreed.store(true, Ordering::SeqCst);
        }
        let present: Vec<bool> = present.iter().map(|count| *count > 0.0).collect();
        let Some(packed) = bucket::pack(model, grads, ids, &present) else { return Ok(()) };
        let summed = match self.inner.gradients.get() {
            #[cfg(feature = "cuda")]
            Some(Gradients::Nccl(nccl)) => nccl.sum(packed, what, self.rank(), self.inner.timeout),
            _ => {
                let device = packed.device();
                let values = packed.into_data().try_into_vec::<f32>().map_err(|e| self.error(format!("{what}: {e:?}")))?;
                let size = values.len();
                let summed = self.inner.engine.sum_f32(values, what, self.inner.timeout)?;
                Tensor::<1>::from_data(TensorData::new(summed, [size]), &device)
            }
        };
        bucket::unpack(model, grads, summed, ids, &present, 1.0 / self.world_size() as f32);
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
