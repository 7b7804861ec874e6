//! Strategies (Lightning's `strategies/`): where the model's replicas live and how they agree.
//!
//! `single_device` trains one replica in this process. `ddp` trains one replica per process,
//! started by a launcher (`mpirun`, `srun`): rank 0's initial weights are broadcast, each rank
//! trains on its shard of every epoch ([`Shard`]), gradients are averaged across the ranks before
//! every optimizer step (not during accumulation), `sync_dist` values and streaming metrics are
//! reduced at epoch ends, and rank 0 alone logs and writes checkpoints. The collectives run on
//! an engine the field trusts — MPI (cargo feature `mpi`) — never on a protocol of fulmen's own.

mod bucket;
mod collective;
mod ddp;
pub mod environment;
#[cfg(feature = "mpi")]
mod mpi;
mod nccl;
pub mod shard;

use std::str::FromStr;
use std::time::Duration;

pub use collective::{Collective, ReduceOp};
pub(crate) use ddp::Ddp;
pub use environment::{ClusterEnvironment, Launcher};
pub use shard::Shard;

use crate::error::{Error, Result};

/// How the Trainer places and synchronizes the model's replicas (Lightning's `strategy`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Strategy {
    /// `ddp` when a launcher started several processes, else one device.
    #[default]
    Auto,
    /// One replica, in this process, on one device.
    SingleDevice,
    /// Distributed data parallel: one replica per process.
    Ddp(DdpStrategy),
}

/// The options of [`Strategy::Ddp`] (Lightning's `DDPStrategy`).
#[derive(Debug, Clone, PartialEq)]
pub struct DdpStrategy {
    /// How long a rank waits at a collective for the others before it stops with an error
    /// naming those that did not arrive (PyTorch's default: 30 minutes).
    pub timeout: Duration,
    /// The engine of the gradient all-reduce; `None` picks one (see [`ProcessGroupBackend`]).
    pub process_group_backend: Option<ProcessGroupBackend>,
}

impl Default for DdpStrategy {
    fn default() -> Self {
        DdpStrategy { timeout: Duration::from_secs(1800), process_group_backend: None }
    }
}

/// The engine that all-reduces the gradients (Lightning's `process_group_backend`). Every other
/// collective — the weights' broadcast, metrics, agreement on stopping — runs on MPI.
///
/// Unset, fulmen picks NCCL when every rank trains on its own CUDA device of one machine and
/// `libnccl` loads, else MPI. Across machines the gradients travel over MPI: Burn 0.22 names an
/// NCCL group by its devices' indices, which repeat from machine to machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessGroupBackend {
    /// MPI, through the host, for any backend (the `mpi` feature).
    Mpi,
    /// NVIDIA's NCCL, device to device (the `cuda` and `mpi` features).
    Nccl,
}

impl FromStr for ProcessGroupBackend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "mpi" => Ok(ProcessGroupBackend::Mpi),
            "nccl" => Ok(ProcessGroupBackend::Nccl),
            "gloo" => Err(Error::Config("process_group_backend = \"gloo\" is PyTorch's own CPU engine; fulmen's is `mpi`".into())),
            other => Err(Error::Config(format!("process_group_backend = {other:?}: use `nccl` or `mpi`"))),
        }
    }
}

impl std::fmt::Display for ProcessGroupBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProcessGroupBackend::Mpi => "mpi",
            ProcessGroupBackend::Nccl => "nccl",
        })
    }
}

impl DdpStrategy {
    /// Lightning's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long a rank waits at a collective before it gives up (default 30 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The engine of the gradient all-reduce; an error at start-up when it cannot run here.
    pub fn process_group_backend(mut self, backend: ProcessGroupBackend) -> Self {
        self.process_group_backend = Some(backend);
        self
    }
}

impl Strategy {
    /// `ddp` with Lightning's defaults.
    pub fn ddp() -> Self {
        Strategy::Ddp(DdpStrategy::default())
    }
}

impl From<DdpStrategy> for Strategy {
    fn from(options: DdpStrategy) -> Self {
        Strategy::Ddp(options)
    }
}

impl FromStr for Strategy {
    type Err = Error;
    /// Lightning's names: `auto`, `single_device`, `ddp`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(Strategy::Auto),
            "single_device" => Ok(Strategy::SingleDevice),
            "ddp" => Ok(Strategy::ddp()),
            other @ ("ddp_spawn" | "ddp_fork" | "ddp_notebook" | "fsdp" | "deepspeed") => Err(Error::Config(format!(
                "strategy = {other:?} is not available; fulmen has `ddp` (one process per device, started by mpirun or srun), `single_device` and `auto`"
            ))),
            other => Err(Error::Config(format!("strategy = {other:?}: use `auto`, `single_device` or `ddp`"))),
        }
    }
}

/// The strategy of this process: `None` for one device, or the `ddp` run it joins. Checks
/// the launcher's environment against `strategy`, `devices` and `num_nodes`.
pub(crate) fn start(strategy: &Strategy, devices: &crate::accelerator::Devices, num_nodes: usize) -> Result<Option<Ddp>> {
    let env = ClusterEnvironment::detect()?;
    let world = env.as_ref().map_or(1, |e| e.world_size);
    let wanted = devices.per_node().map(|n| n * num_nodes);
    let launch = |n: usize| {
        format!(
            "start one process per device with a launcher: `mpirun -np {n} <program> ...` on one machine, \
             `mpirun -np {n} --host a:{per},b:{per} ...` or `srun --ntasks={n} ...` across machines (README: Data parallel)",
            per = n / num_nodes.max(1)
        )
    };
    let env = match (strategy, env) {
        (Strategy::SingleDevice, Some(env)) if world > 1 => {
            return Err(Error::Config(format!(
                "{} started {world} processes, and strategy = single_device would train {world} unrelated models: use strategy = ddp (or auto)",
                env.launcher
            )));
        }
        (Strategy::Ddp(_), None) if wanted.is_some_and(|n| n > 1) => {
            let n = wanted.unwrap_or(1);
            return Err(Error::Config(format!(
                "strategy = ddp with devices = {devices} and num_nodes = {num_nodes} trains {n} replicas, one per process, and this is a single process: {}",
                launch(n)
            )));
        }
        (Strategy::Auto, None) if wanted.is_some_and(|n| n > 1) => {
            let n = wanted.unwrap_or(1);
            return Err(Error::Config(format!(
                "devices = {devices} with num_nodes = {num_nodes} asks for {n} devices, and this is a single process: set strategy = ddp and {}",
                launch(n)
            )));
        }
        (Strategy::SingleDevice, _) | (_, None) => return Ok(None),
        (_, Some(env)) if world == 1 => {
            let _ = env;
            return Ok(None);
        }
        (_, Some(env)) => env,
    };
    if let Some(n) = wanted
        && n != world
    {
        return Err(Error::Config(format!(
            "{} started {world} processes, but devices = {devices} × num_nodes = {num_nodes} makes {n}: start {n} processes, \
             or set devices and num_nodes to match (devices = auto takes one per process)",
            env.launcher
        )));
    }
    let options = match strategy {
        Strategy::Ddp(options) => options.clone(),
        _ => DdpStrategy::default(),
    };
    Ddp::start(env, &options).map(Some)
}

/// On the CPU the processes of one machine share its cores: unless `RAYON_NUM_THREADS` says
/// otherwise, each computes on its share (as torchrun sets `OMP_NUM_THREADS`), so they do not
/// oversubscribe the machine.
pub(crate) fn share_cpu(env: &ClusterEnvironment) {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let allowed = std::thread::available_parallelism().map_or(online, |n| n.get());
    let processes = env.local_world_size.unwrap_or(env.world_size).max(1);
    // A launcher that bound this process to some cores (mpirun's default) gave it its share.
    let threads = if allowed < online { allowed } else { (online / processes).max(1) };
    if rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().is_ok() && env.rank == 0 {
        println!("{processes} processes on {online} cores: {threads} compute thread{} each (RAYON_NUM_THREADS to change)", if threads == 1 { "" } else { "s" });
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Strategy::Auto => "auto",
            Strategy::SingleDevice => "single_device",
            Strategy::Ddp(_) => "ddp",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightnings_names_parse_and_the_others_name_the_choices() {
        assert_eq!("ddp".parse::<Strategy>().unwrap(), Strategy::ddp());
        assert_eq!("auto".parse::<Strategy>().unwrap(), Strategy::Auto);
        assert_eq!("single_device".parse::<Strategy>().unwrap(), Strategy::SingleDevice);
        let err = "fsdp".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("not available") && err.contains("`ddp`"), "{err}");
        let err = "dpp".parse::<Strategy>().unwrap_err().to_string();
        assert!(err.contains("`auto`, `single_device` or `ddp`"), "{err}");
    }

    #[test]
    fn process_group_backends_parse_and_gloo_names_mpi() {
        assert_eq!("nccl".parse::<ProcessGroupBackend>().unwrap(), ProcessGroupBackend::Nccl);
        assert_eq!(" mpi ".parse::<ProcessGroupBackend>().unwrap(), ProcessGroupBackend::Mpi);
        let err = "gloo".parse::<ProcessGroupBackend>().unwrap_err().to_string();
        assert!(err.contains("fulmen's is `mpi`"), "{err}");
        let err = "ncl".parse::<ProcessGroupBackend>().unwrap_err().to_string();
        assert!(err.contains("use `nccl` or `mpi`"), "{err}");
    }
}
