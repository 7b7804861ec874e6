//! Lightning's `devices` argument: `auto`, a count (`1`, `-1` for all) or indices (`[1]`, `0,2`).

use std::str::FromStr;

use crate::error::{Error, Result};

/// Which devices of the accelerator to train on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Devices {
    /// One device, the accelerator's first.
    #[default]
    Auto,
    /// This many devices, the first ones.
    Count(usize),
    /// Every device the accelerator has (`-1`).
    All,
    /// These devices, by index (`[1]` is the second GPU).
    Indices(Vec<usize>),
}

impl From<usize> for Devices {
    fn from(n: usize) -> Self {
        Devices::Count(n)
    }
}

impl From<Vec<usize>> for Devices {
    fn from(indices: Vec<usize>) -> Self {
        Devices::Indices(indices)
    }
}

impl<const N: usize> From<[usize; N]> for Devices {
    fn from(indices: [usize; N]) -> Self {
        Devices::Indices(indices.to_vec())
    }
}

impl FromStr for Devices {
    type Err = Error;
    /// `auto`, `N`, `-1`, or indices as `[1]`, `1,` or `0,2` (Lightning's spellings: a bare
    /// number is a count, a list is indices).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let bad = || Error::Config(format!("devices = {s:?}: use `auto`, a count such as `1`, `-1` for every device, or indices such as `[1]` or `0,2`"));
        match s {
            "auto" => return Ok(Devices::Auto),
            "-1" => return Ok(Devices::All),
            _ => {}
        }
        let list = s.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'));
        if list.is_none() && !s.contains(',') {
            return s.parse().map(Devices::Count).map_err(|_| bad());
        }
        let indices: Vec<usize> =
            list.unwrap_or(s).split(',').map(str::trim).filter(|i| !i.is_empty()).map(|i| i.parse().map_err(|_| bad())).collect::<Result<_>>()?;
        if indices.is_empty() {
            return Err(bad());
        }
        Ok(Devices::Indices(indices))
    }
}

impl std::fmt::Display for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Devices::Auto => f.write_str("auto"),
            Devices::Count(n) => write!(f, "{n}"),
            Devices::All => f.write_str("-1"),
            Devices::Indices(indices) => write!(f, "{indices:?}"),
        }
    }
}

impl Devices {
    /// The one device index this selects among `available` devices of `accelerator`, or why
    /// not. fulmen trains on one device per process.
    pub(crate) fn single(&self, accelerator: &str, available: usize) -> Result<usize> {
        let index = match self {
            Devices::Auto | Devices::Count(1) => 0,
            Devices::All if available == 1 => 0,
            Devices::Indices(indices) if indices.len() == 1 => indices[0],
            Devices::Count(0) => return Err(Error::Config("devices = 0: train on at least one device (devices = 1)".into())),
            other => {
                return Err(Error::Config(format!(
                    "devices = {other}: a process trains on one device; choose one (devices = 1, or an index such as [1]), \
                     or train on several with strategy = ddp, one process per device (README: Data parallel)"
                )));
            }
        };
        if index >= available {
            return Err(Error::Accelerator {
                requested: format!("{accelerator} device {index}"),
                reason: format!("this machine has {available} {accelerator} device{}; use an index below {available}", if available == 1 { "" } else { "s" }),
            });
        }
        Ok(index)
    }

    /// The one device of the process with `local_rank` on this machine, in a data-parallel run
    /// (one process per device): `auto`, `-1` and a count give the `local_rank`-th device,
    /// indices the `local_rank`-th index.
    pub(crate) fn replica(&self, local_rank: usize) -> Result<Devices> {
        let index = match self {
            Devices::Auto | Devices::All => local_rank,
            Devices::Count(n) if local_rank < *n => local_rank,
            Devices::Indices(indices) if local_rank < indices.len() => indices[local_rank],
            other => {
                return Err(Error::Config(format!(
                    "devices = {other} gives each machine fewer devices than it has processes (this one is local rank {local_rank}): \
                     start one process per device, or list one device per process"
                )));
            }
        };
        Ok(Devices::Indices(vec![index]))
    }

    /// How many devices per machine this asks for, when it says (a count or indices).
    pub(crate) fn per_node(&self) -> Option<usize> {
        match self {
            Devices::Count(n) => Some(*n),
            Devices::Indices(indices) => Some(indices.len()),
            Devices::Auto | Devices::All => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lightning_spellings_parse() {
        assert_eq!("auto".parse::<Devices>().unwrap(), Devices::Auto);
        assert_eq!("2".parse::<Devices>().unwrap(), Devices::Count(2));
        assert_eq!("-1".parse::<Devices>().unwrap(), Devices::All);
        assert_eq!("[1]".parse::<Devices>().unwrap(), Devices::Indices(vec![1]));
        assert_eq!("1,".parse::<Devices>().unwrap(), Devices::Indices(vec![1]));
        assert_eq!("0, 2".parse::<Devices>().unwrap(), Devices::Indices(vec![0, 2]));
        for bad in ["", "two", "[]", "[a]", "-2", ","] {
            let err = bad.parse::<Devices>().unwrap_err().to_string();
            assert!(err.contains("indices such as `[1]`"), "{bad}: {err}");
        }
    }

    #[test]
    fn one_device_per_process_is_selected_or_refused_by_name() {
        assert_eq!(Devices::Auto.single("cuda", 2).unwrap(), 0);
        assert_eq!(Devices::Indices(vec![1]).single("cuda", 2).unwrap(), 1);
        assert_eq!(Devices::All.single("cpu", 1).unwrap(), 0);
        let err = Devices::Indices(vec![2]).single("cuda", 2).unwrap_err().to_string();
        assert!(err.contains("cuda device 2") && err.contains("has 2 cuda devices"), "{err}");
        let err = Devices::Count(2).single("cuda", 2).unwrap_err().to_string();
        assert!(err.contains("strategy = ddp, one process per device"), "{err}");
        let err = Devices::Count(0).single("cpu", 1).unwrap_err().to_string();
        assert!(err.contains("at least one device"), "{err}");
    }

    #[test]
    fn each_process_of_a_data_parallel_run_takes_its_own_device() {
        assert_eq!(Devices::Count(2).replica(1).unwrap(), Devices::Indices(vec![1]));
        assert_eq!(Devices::Auto.replica(3).unwrap(), Devices::Indices(vec![3]));
        assert_eq!(Devices::Indices(vec![2, 5]).replica(1).unwrap(), Devices::Indices(vec![5]));
        let err = Devices::Count(2).replica(2).unwrap_err().to_string();
        assert!(err.contains("local rank 2") && err.contains("one process per device"), "{err}");
    }
}
