//! Where this process sits in a distributed job, read from its launcher's environment, as
//! Lightning's cluster environments do: fulmen's own variables, Open MPI's `mpirun`, MPICH/Intel
//! MPI (PMI) and SLURM's `srun`.

use crate::error::{Error, Result};

/// The launcher that started this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// `FULMEN_RANK`, `FULMEN_WORLD_SIZE`, `FULMEN_LOCAL_RANK`, `FULMEN_NODE_RANK`.
    Fulmen,
    /// Open MPI's `mpirun`/`mpiexec` (`OMPI_COMM_WORLD_*`).
    OpenMpi,
    /// MPICH's or Intel MPI's Hydra launcher (`PMI_RANK`, `PMI_SIZE`, `MPI_LOCALRANKID`).
    Pmi,
    /// SLURM's `srun` (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, `SLURM_NODEID`).
    Slurm,
}

impl std::fmt::Display for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Launcher::Fulmen => "fulmen's FULMEN_* variables",
            Launcher::OpenMpi => "Open MPI (mpirun)",
            Launcher::Pmi => "an MPICH/Intel MPI launcher (PMI)",
            Launcher::Slurm => "SLURM (srun)",
        })
    }
}

/// This process's place in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEnvironment {
    /// Who started the process.
    pub launcher: Launcher,
    /// The global rank, `0..world_size`.
    pub rank: usize,
    /// The number of processes in the job.
    pub world_size: usize,
    /// The rank among the processes on this machine (picks the device).
    pub local_rank: usize,
    /// The processes on this machine, when the launcher says.
    pub local_world_size: Option<usize>,
    /// The machine's index among the job's machines, when the launcher says (SLURM, fulmen's
    /// variables; Open MPI does not).
    pub node_rank: Option<usize>,
}

/// The variables of each launcher: rank, world size, local rank, local world size, node rank.
const LAUNCHERS: [(Launcher, [&str; 5]); 4] = [
    (Launcher::Fulmen, ["FULMEN_RANK", "FULMEN_WORLD_SIZE", "FULMEN_LOCAL_RANK", "FULMEN_LOCAL_WORLD_SIZE", "FULMEN_NODE_RANK"]),
    // (OMPI_COMM_WORLD_NODE_RANK is a rank among a node's processes, not the node's index.)
    (Launcher::OpenMpi, ["OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", ""]),
    (Launcher::Pmi, ["PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS", ""]),
    (Launcher::Slurm, ["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "", "SLURM_NODEID"]),
];

impl ClusterEnvironment {
    /// The environment of this process, or `None` when no launcher set one (a plain run).
    pub fn detect() -> Result<Option<Self>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`detect`](Self::detect) over any variable lookup. The first launcher whose rank and world
    /// size are both set wins; a variable that is set but not a number, or a rank outside the
    /// world, is an error naming it.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        for (launcher, [rank, size, local, local_size, node]) in LAUNCHERS {
            let (Some(rank_value), Some(size_value)) = (var(rank), var(size)) else { continue };
            if launcher == Launcher::Slurm && var("SLURM_STEP_NUM_TASKS").is_none() {
                // An sbatch script's own shell (not a task that srun started): not distributed.
                continue;
            }
            let number = |name: &str, value: String| -> Result<usize> {
                value.trim().parse().map_err(|_| Error::Config(format!("{name} = {value:?} (set by {launcher}) is not a number; unset it or fix the launcher")))
            };
            let optional = |name: &str| -> Result<Option<usize>> {
                match name {
                    "" => Ok(None),
                    name => var(name).map(|v| number(name, v)).transpose(),
                }
            };
            let rank_n = number(rank, rank_value)?;
            let world_size = number(size, size_value)?;
            if world_size == 0 || rank_n >= world_size {
                return Err(Error::Config(format!("{rank} = {rank_n} with {size} = {world_size} (set by {launcher}): a rank must be below the world size")));
            }
            let local_rank = optional(local)?.unwrap_or(if world_size == 1 { 0 } else { rank_n });
            return Ok(Some(ClusterEnvironment {
                launcher,
                rank: rank_n,
                world_size,
                local_rank,
                local_world_size: optional(local_size)?,
                node_rank: optional(node)?,
            }));
        }
        Ok(None)
    }

    /// Rank 0: the process that logs and writes checkpoints.
    pub fn is_global_zero(&self) -> bool {
        self.rank == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Option<ClusterEnvironment>> {
        let map: std::collections::HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ClusterEnvironment::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn a_plain_run_has_no_environment() {
        assert_eq!(env(&[]).unwrap(), None);
        assert_eq!(env(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")]).unwrap(), None, "an sbatch shell is not a task");
    }

    #[test]
    fn each_launcher_is_read() {
        let ompi = env(&[
            ("OMPI_COMM_WORLD_RANK", "3"),
            ("OMPI_COMM_WORLD_SIZE", "4"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"),
            ("OMPI_COMM_WORLD_NODE_RANK", "1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(ompi, ClusterEnvironment { launcher: Launcher::OpenMpi, rank: 3, world_size: 4, local_rank: 1, local_world_size: Some(2), node_rank: None });
        let slurm = env(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "8"), ("SLURM_LOCALID", "1"), ("SLURM_NODEID", "2"), ("SLURM_STEP_NUM_TASKS", "8")])
            .unwrap()
            .unwrap();
        assert_eq!((slurm.launcher, slurm.rank, slurm.world_size, slurm.local_rank, slurm.node_rank), (Launcher::Slurm, 5, 8, 1, Some(2)));
        let pmi = env(&[("PMI_RANK", "1"), ("PMI_SIZE", "2"), ("MPI_LOCALRANKID", "1")]).unwrap().unwrap();
        assert_eq!((pmi.launcher, pmi.rank, pmi.local_rank, pmi.node_rank), (Launcher::Pmi, 1, 1, None));
    }

    #[test]
    fn fulmens_variables_win_and_the_local_rank_defaults_to_the_rank() {
        let e = env(&[("FULMEN_RANK", "1"), ("FULMEN_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "2")]).unwrap().unwrap();
        assert_eq!((e.launcher, e.rank, e.local_rank, e.local_world_size), (Launcher::Fulmen, 1, 1, None));
    }

    #[test]
    fn bad_values_are_errors_naming_the_variable() {
        let err = env(&[("OMPI_COMM_WORLD_RANK", "x"), ("OMPI_COMM_WORLD_SIZE", "2")]).unwrap_err().to_string();
        assert!(err.contains("OMPI_COMM_WORLD_RANK") && err.contains("not a number"), "{err}");
        let err = env(&[("FULMEN_RANK", "2"), ("FULMEN_WORLD_SIZE", "2")]).unwrap_err().to_string();
        assert!(err.contains("FULMEN_RANK = 2") && err.contains("below the world size"), "{err}");
    }
}
