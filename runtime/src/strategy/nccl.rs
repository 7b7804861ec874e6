//! NCCL for the gradient all-reduce, when every rank trains on its own CUDA device of one
//! machine: the bucket is summed device to device by Burn's collective API
//! (`burn::tensor::distributed::all_reduce`, which cubecl-cuda runs on NCCL).
//!
//! Burn names a group by its devices' indices (a device's NCCL rank is its place among them)
//! and mints the group's NCCL id in each process. The processes agree on one through
//! `NCCL_COMM_ID`: with it set, NCCL derives the id from that address, and the group's NCCL
//! rank 0 listens there. Rank 0 picks a free port on this machine and MPI broadcasts it. The
//! indices repeat from machine to machine, so a group spans one machine; across machines the
//! gradients travel over MPI.

use super::ProcessGroupBackend;

/// Where a rank trains, as the ranks tell each other before choosing the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The machine's host name.
    pub host: String,
    /// The CUDA device's index, when it trains on one.
    pub cuda: Option<usize>,
    /// Whether `libnccl` loads in this process (as cudarc looks for it).
    pub nccl_loads: bool,
}

impl Place {
    /// This rank's place.
    pub fn here(cuda: Option<usize>) -> Place {
        Place { host: host_name(), cuda, nccl_loads: cuda.is_some() && nccl_loads() }
    }

    /// `host`, the index (or `-`) and whether NCCL loads, one per line.
    pub fn encode(&self) -> Vec<u8> {
        let cuda = self.cuda.map_or("-".to_string(), |i| i.to_string());
        format!("{}\n{cuda}\n{}", self.host, u8::from(self.nccl_loads)).into_bytes()
    }

    /// The place [`encode`](Self::encode) wrote; `None` for bytes it did not write.
    pub fn decode(bytes: &[u8]) -> Option<Place> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split('\n');
        let host = lines.next()?.to_string();
        let cuda = match lines.next()? {
            "-" => None,
            index => Some(index.parse().ok()?),
        };
        let nccl_loads = lines.next()? == "1";
        lines.next().is_none().then_some(Place { host, cuda, nccl_loads })
    }
}

/// The engine of the gradient all-reduce for ranks at `places` (by rank): `wanted`, or NCCL
/// when it can run and MPI otherwise. An error names why NCCL, asked for, cannot run.
pub(crate) fn choose(places: &[Place], wanted: Option<ProcessGroupBackend>) -> Result<ProcessGroupBackend, String> {
    if wanted == Some(ProcessGroupBackend::Mpi) {
        return Ok(ProcessGroupBackend::Mpi);
    }
    match why_not_nccl(places, cfg!(feature = "cuda")) {
        None => Ok(ProcessGroupBackend::Nccl),
        Some(_) if wanted.is_none() => Ok(ProcessGroupBackend::Mpi),
        Some(reason) => Err(format!("process_group_backend = nccl cannot run: {reason}; leave it unset (or set mpi) to all-reduce over MPI")),
    }
}

/// Why NCCL cannot all-reduce between ranks at `places`, if it cannot.
fn why_not_nccl(places: &[Place], built_with_cuda: bool) -> Option<String> {
    if !built_with_cuda {
        return Some("this build has no CUDA (build with `--features cuda,mpi`)".into());
    }
    if let Some(rank) = places.iter().position(|p| p.cuda.is_none()) {
        return Some(format!("rank {rank} does not train on a CUDA device"));
    }
    let mut hosts: Vec<&str> = places.iter().map(|p| p.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    if hosts.len() > 1 {
        return Some(format!("the ranks are on {} machines ({}), and Burn 0.22 forms NCCL groups on one machine", hosts.len(), hosts.join(", ")));
    }
    for (rank, place) in places.iter().enumerate() {
        if let Some(other) = places[..rank].iter().position(|p| p.cuda == place.cuda) {
            return Some(format!(
                "ranks {other} and {rank} share CUDA device {}, and NCCL needs a device per rank (set devices to one per process)",
                place.cuda.unwrap_or(0)
            ));
        }
    }
    if let Some(rank) = places.iter().position(|p| !p.nccl_loads) {
        return Some(format!(
            "rank {rank} cannot load NCCL (cudarc looks for libnccl.so: install NCCL's development package, or link libnccl.so to libnccl.so.2 in LD_LIBRARY_PATH)"
        ));
    }
    None
}

/// This machine's host name.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let written = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    if written { String::from_utf8_lossy(&buffer[..end]).into_owned() } else { "unknown host".into() }
}

/// Whether cudarc finds `libnccl`: cubecl-cuda enables its collectives only then.
#[cfg(feature = "cuda")]
fn nccl_loads() -> bool {
    // SAFETY: tries to load the library under cudarc's names, with no other effect.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

#[cfg(not(feature = "cuda"))]
fn nccl_loads() -> bool {
    false
}

#[cfg(feature = "cuda")]
pub(crate) use group::Nccl;

#[cfg(feature = "cuda")]
mod group {
    use std::sync::mpsc;
    use std::time::Duration;

    use burn::tensor::distributed::{ReduceOperation, all_reduce};
    use burn::tensor::{Device, Tensor};

    use super::Place;

    /// The NCCL group of a run's ranks, one CUDA device each.
    pub(crate) struct Nccl {
        devices: Vec<Device>,
    }

    impl Nccl {
        /// An address on this machine where NCCL's root can listen: a port the system just
        /// gave out (rank 0 picks it).
        pub fn bootstrap_address() -> Result<String, String> {
            let cannot = |e: std::io::Error| format!("cannot find a free port for NCCL's bootstrap: {e}");
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(cannot)?;
            Ok(format!("127.0.0.1:{}", listener.local_addr().map_err(cannot)?.port()))
        }

        /// The group of the devices at `places`, bootstrapped at `address` (the same on every
        /// rank). The communicator itself is formed at the first all-reduce.
        pub fn new(places: &[Place], address: &str) -> Nccl {
            if std::env::var_os("NCCL_COMM_ID").is_none() {
                // SAFETY: set before the first NCCL call of the process, which is the only
                // reader; glibc's getenv is safe against a concurrent setenv (it never frees an
                // environment array).
                unsafe { std::env::set_var("NCCL_COMM_ID", address) };
            }
            Nccl { devices: places.iter().filter_map(|p| p.cuda).map(Device::cuda).collect() }
        }

        /// `bucket` summed over the ranks. Waits for NCCL to finish; if it has not within
        /// `timeout` (a rank stopped inside the all-reduce, which NCCL cannot notice), the
        /// process exits with an error naming `what`, as PyTorch's NCCL watchdog does, so the
        /// launcher stops the job instead of leaving it hanging.
        pub fn sum(&self, bucket: Tensor<1>, what: &str, rank: usize, timeout: Duration) -> Tensor<1> {
            let summed = all_reduce(bucket, ReduceOperation::Sum, self.devices.clone()).resolve();
            let (done, wait) = mpsc::channel::<()>();
            let message = format!("rank {rank}: {what} (NCCL) did not finish within {timeout:?}: another rank stopped inside it; exiting");
            let watchdog = std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                    eprintln!("{message}");
                    // SAFETY: ends the process at once; this thread cannot unwind the one
                    // blocked inside the device, and the launcher stops the other ranks.
                    unsafe { libc::_exit(1) };
                }
            });
            // Reading one value waits for the all-reduce.
            let _ = summed.clone().slice(0..1).into_data();
            let _ = done.send(());
            let _ = watchdog.join();
            summed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(host: &str, index: usize) -> Place {
        Place { host: host.into(), cuda: Some(index), nccl_loads: true }
    }

    #[test]
    fn places_travel_as_bytes() {
        for place in [gpu("node-1", 3), Place { host: "cpu box".into(), cuda: None, nccl_loads: false }] {
            assert_eq!(Place::decode(&place.encode()), Some(place));
        }
        assert_eq!(Place::decode(b"host\nx\n1"), None);
        assert_eq!(Place::decode(b"host"), None);
    }

    #[test]
    fn nccl_runs_between_the_cuda_devices_of_one_machine_only() {
        let one_machine = [gpu("a", 0), gpu("a", 1)];
        assert_eq!(why_not_nccl(&one_machine, true), None);
        let cpu = [gpu("a", 0), Place { host: "a".into(), cuda: None, nccl_loads: false }];
        assert_eq!(why_not_nccl(&cpu, true).as_deref(), Some("rank 1 does not train on a CUDA device"));
        let two_machines = [gpu("a", 0), gpu("b", 0)];
        assert!(why_not_nccl(&two_machines, true).is_some_and(|r| r.contains("2 machines (a, b)")));
        let shared = [gpu("a", 1), gpu("a", 1)];
        assert!(why_not_nccl(&shared, true).is_some_and(|r| r.contains("ranks 0 and 1 share CUDA device 1")));
        let missing = [gpu("a", 0), Place { nccl_loads: false, ..gpu("a", 1) }];
        assert!(why_not_nccl(&missing, true).is_some_and(|r| r.contains("rank 1 cannot load NCCL")));
        assert!(why_not_nccl(&one_machine, false).is_some_and(|r| r.contains("--features cuda,mpi")));
    }

    #[test]
    fn unset_picks_nccl_where_it_runs_and_asked_for_it_must_run() {
        let cpu = vec![Place { host: "a".into(), cuda: None, nccl_loads: false }; 2];
        assert_eq!(choose(&cpu, None), Ok(ProcessGroupBackend::Mpi));
        assert_eq!(choose(&cpu, Some(ProcessGroupBackend::Mpi)), Ok(ProcessGroupBackend::Mpi));
        let err = choose(&cpu, Some(ProcessGroupBackend::Nccl)).unwrap_err();
        assert!(err.starts_with("process_group_backend = nccl cannot run: ") && err.contains("set mpi"), "{err}");
        let gpus = [gpu("a", 0), gpu("a", 1)];
        let expected = if cfg!(feature = "cuda") { ProcessGroupBackend::Nccl } else { ProcessGroupBackend::Mpi };
        assert_eq!(choose(&gpus, None), Ok(expected));
        assert_eq!(choose(&gpus, Some(ProcessGroupBackend::Mpi)), Ok(ProcessGroupBackend::Mpi));
    }
}
