//! The MPI engine (cargo feature `mpi`): Open MPI, MPICH or any MPI-3 library through the `mpi`
//! crate (rsmpi), on the host, so it serves every backend.
//!
//! Every MPI call is made on one thread of fulmen's (`MPI_THREAD_FUNNELED`), which initializes
//! MPI, runs each collective non-blocking and polls it, and between polls serves a control
//! channel (a duplicate of the world communicator): a rank that fails tells the others, which
//! then stop naming it; a rank whose collective has not completed within the timeout asks the
//! others where they are and names those that do not answer. A failed collective cannot be
//! cancelled (MPI has no way to): the thread keeps its buffers for the rest of the process and
//! only answers the others, and MPI is not finalized. MPI is finalized at process exit.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::request::Request;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::collective::{Collective, ReduceOp};
use crate::error::{Error, Result};

/// Control message tags: a rank failed (its reason), where are you (probe), here (the answer,
/// with what the rank is waiting for).
const FAILED: i32 = 1;
const PROBE: i32 = 2;
const ANSWER: i32 = 3;
/// How long a rank waits for the answers to its probe.
const PROBE_GRACE: Duration = Duration::from_secs(5);
/// How long a signalled rank waits for the answers to its probe: mpirun stops a job whose
/// rank died with SIGTERM, then SIGKILL about a second later.
const SIGNALLED_GRACE: Duration = Duration::from_millis(300);
/// How long the exit waits for MPI_Finalize (it waits for every rank).
const FINALIZE_WAIT: Duration = Duration::from_secs(60);

enum Op {
    SumF32(Vec<f32>),
    ReduceF64(Vec<f64>, ReduceOp),
    Broadcast(Vec<u8>),
    Gather(Vec<u8>),
    Barrier,
    Fail(String),
    Finalize,
}

enum Reply {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<u8>),
    Gathered(Vec<Vec<u8>>),
    Done,
    Failed(String),
}

struct Job {
    op: Op,
    what: String,
    timeout: Duration,
    reply: Sender<Reply>,
}

/// The process's MPI engine: a handle on the thread that makes the MPI calls.
pub(crate) struct Mpi {
    jobs: Mutex<Sender<Job>>,
    rank: usize,
    size: usize,
    host: String,
}

static ENGINE: OnceLock<std::result::Result<Mpi, String>> = OnceLock::new();

impl Mpi {
    /// The engine, started (and MPI initialized) on first use; MPI allows one initialization
    /// per process.
    pub fn get() -> Result<&'static Mpi> {
        ENGINE.get_or_init(Mpi::start).as_ref().map_err(|reason| Error::Distributed { rank: 0, reason: reason.clone() })
    }

    fn start() -> std::result::Result<Mpi, String> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, started) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("fulmen-mpi".into()).spawn(move || {
            let Some((universe, _)) = mpi::initialize_with_threading(Threading::Funneled) else {
                let _ = ready.send(Err("MPI was initialized in this process before fulmen started its engine; let fulmen initialize it".to_string()));
                return;
            };
            let world = universe.world();
            let control = world.duplicate();
            // A peer that died must not abort this process from inside a control send.
            // SAFETY: sets the error handler of a valid communicator to a predefined handler.
            unsafe { mpi::ffi::MPI_Comm_set_errhandler(control.as_raw(), mpi::ffi::RSMPI_ERRORS_RETURN) };
            let host = mpi::environment::processor_name().unwrap_or_else(|_| "this host".into());
            let (rank, size) = (world.rank() as usize, world.size() as usize);
            let _ = ready.send(Ok((rank, size, host)));
            let mut worker = Worker { world, control, rank, size, queue, failure: None, waiting: "computing (between collectives)".into() };
            let finalized = worker.serve();
            drop(worker);
            drop(universe);
            if let Some(reply) = finalized {
                let _ = reply.send(Reply::Done);
            }
        });
        spawned.map_err(|e| format!("cannot start the MPI thread: {e}"))?;
        let (rank, size, host) = started.recv().map_err(|_| "the MPI thread stopped while initializing MPI".to_string())??;
        // SAFETY: registers a plain `extern "C"` function without arguments.
        unsafe { libc::atexit(finalize_at_exit) };
        Ok(Mpi { jobs: Mutex::new(jobs), rank, size, host })
    }

    fn run(&self, op: Op, what: &str, timeout: Duration) -> Result<Reply> {
        let (reply, answer) = mpsc::channel();
        let job = Job { op, what: what.to_string(), timeout, reply };
        let stopped = || Error::Distributed { rank: self.rank, reason: format!("the MPI thread has stopped; {what} cannot run") };
        self.jobs.lock().map_err(|_| stopped())?.send(job).map_err(|_| stopped())?;
        // The thread enforces the timeout (and probes); this bound only guards against the
        // thread itself being stuck inside MPI.
        match answer.recv_timeout(timeout + PROBE_GRACE + Duration::from_secs(30)) {
            Ok(Reply::Failed(reason)) => Err(Error::Distributed { rank: self.rank, reason }),
            Ok(reply) => Ok(reply),
            Err(_) => Err(Error::Distributed { rank: self.rank, reason: format!("{what} did not return: the MPI library is stuck") }),
        }
    }

    fn finalize(&self) {
        let (reply, answer) = mpsc::channel();
        let job = Job { op: Op::Finalize, what: "MPI_Finalize".into(), timeout: FINALIZE_WAIT, reply };
        if self.jobs.lock().map(|jobs| jobs.send(job).is_ok()).unwrap_or(false) {
            let _ = answer.recv_timeout(FINALIZE_WAIT);
        }
    }
}

extern "C" fn finalize_at_exit() {
    if let Some(Ok(mpi)) = ENGINE.get() {
        mpi.finalize();
    }
}

fn unexpected(what: &str) -> Error {
    Error::Distributed { rank: 0, reason: format!("{what}: the MPI thread gave an answer of the wrong kind") }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.size
    }
    fn describe(&self) -> String {
        format!("MPI, {} processes, rank {} on {}", self.size, self.rank, self.host)
    }
    fn sum_f32(&self, values: Vec<f32>, what: &str, timeout: Duration) -> Result<Vec<f32>> {
        match self.run(Op::SumF32(values), what, timeout)? {
            Reply::F32(v) => Ok(v),
            _ => Err(unexpected(what)),
        }
    }
    fn reduce_f64(&self, values: Vec<f64>, op: ReduceOp, what: &str, timeout: Duration) -> Result<Vec<f64>> {
        match self.run(Op::ReduceF64(values, op), what, timeout)? {
            Reply::F64(v) => Ok(v),
            _ => Err(unexpected(what)),
        }
    }
    fn broadcast(&self, bytes: Vec<u8>, what: &str, timeout: Duration) -> Result<Vec<u8>> {
        match self.run(Op::Broadcast(bytes), what, timeout)? {
            Reply::Bytes(v) => Ok(v),
            _ => Err(unexpected(what)),
        }
    }
    fn all_gather(&self, bytes: Vec<u8>, what: &str, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        match self.run(Op::Gather(bytes), what, timeout)? {
            Reply::Gathered(v) => Ok(v),
            _ => Err(unexpected(what)),
        }
    }
    fn barrier(&self, what: &str, timeout: Duration) -> Result<()> {
        self.run(Op::Barrier, what, timeout).map(|_| ())
    }
    fn announce_failure(&self, reason: &str) {
        let _ = self.run(Op::Fail(reason.to_string()), "telling the other ranks of the failure", Duration::from_secs(5));
    }
}

/// The thread that makes every MPI call.
struct Worker {
    world: SimpleCommunicator,
    control: SimpleCommunicator,
    rank: usize,
    size: usize,
    queue: Receiver<Job>,
    /// A failure another rank announced (its rank and reason).
    failure: Option<(usize, String)>,
    /// What this rank is doing, as its answer to probes says.
    waiting: String,
}

impl Worker {
    /// Runs jobs until `Finalize` (returned, to be answered once MPI is finalized).
    fn serve(&mut self) -> Option<Sender<Reply>> {
        loop {
            let job = match self.queue.recv_timeout(Duration::from_millis(10)) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.poll_control(&mut BTreeMap::new());
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            };
            let Job { op, what, timeout, reply } = job;
            if let Op::Finalize = op {
                return Some(reply);
            }
            if let Op::Fail(reason) = &op {
                self.announce(reason);
                let _ = reply.send(Reply::Done);
                continue;
            }
            if let Some((rank, reason)) = &self.failure {
                let _ = reply.send(Reply::Failed(format!("rank {rank} failed, so {what} cannot run: {reason}")));
                continue;
            }
            self.waiting = format!("waiting at {what}");
            let outcome = self.collective(op, &what, timeout, &reply);
            self.waiting = "computing (between collectives)".into();
            let _ = reply.send(outcome);
        }
    }

    /// Runs one collective; a failure never returns (see [`wait`](Self::wait)).
    fn collective(&mut self, op: Op, what: &str, timeout: Duration, reply: &Sender<Reply>) -> Reply {
        match op {
            Op::SumF32(values) => {
                let mut out = vec![0f32; values.len()];
                mpi::request::scope(|scope| {
                    let request = self.world.immediate_all_reduce_into(scope, &values[..], &mut out[..], SystemOperation::sum());
                    self.wait(request, what, timeout, reply)
                });
                Reply::F32(out)
            }
            Op::ReduceF64(values, op) => {
                let mut out = vec![0f64; values.len()];
                let op = match op {
                    ReduceOp::Sum => SystemOperation::sum(),
                    ReduceOp::Max => SystemOperation::max(),
                    ReduceOp::Min => SystemOperation::min(),
                };
                mpi::request::scope(|scope| {
                    let request = self.world.immediate_all_reduce_into(scope, &values[..], &mut out[..], op);
                    self.wait(request, what, timeout, reply)
                });
                Reply::F64(out)
            }
            Op::Broadcast(mut bytes) => {
                let mut len = [bytes.len() as u64];
                mpi::request::scope(|scope| {
                    let request = self.world.process_at_rank(0).immediate_broadcast_into(scope, &mut len[..]);
                    self.wait(request, what, timeout, reply)
                });
                bytes.resize(len[0] as usize, 0);
                if bytes.is_empty() {
                    // Open MPI refuses an MPI_Ibcast of nothing (MPI_ERR_ARG).
                    return Reply::Bytes(bytes);
                }
                mpi::request::scope(|scope| {
                    let request = self.world.process_at_rank(0).immediate_broadcast_into(scope, &mut bytes[..]);
                    self.wait(request, what, timeout, reply)
                });
                Reply::Bytes(bytes)
            }
            Op::Gather(mut bytes) => {
                // Every rank sends at least one byte (a marker), as Open MPI refuses empty parts.
                bytes.insert(0, 1);
                let mut lens = vec![0u64; self.size];
                let len = [bytes.len() as u64];
                mpi::request::scope(|scope| {
                    let request = self.world.immediate_all_gather_into(scope, &len[..], &mut lens[..]);
                    self.wait(request, what, timeout, reply)
                });
                let counts: Vec<i32> = lens.iter().map(|&n| n as i32).collect();
                let displs: Vec<i32> = counts.iter().scan(0, |at, &n| Some(std::mem::replace(at, *at + n))).collect();
                let mut all = vec![0u8; lens.iter().sum::<u64>() as usize];
                {
                    let mut partition = PartitionMut::new(&mut all[..], counts, &displs[..]);
                    mpi::request::scope(|scope| {
                        let request = self.world.immediate_all_gather_varcount_into(scope, &bytes[..], &mut partition);
                        self.wait(request, what, timeout, reply)
                    });
                }
                let mut out = Vec::with_capacity(self.size);
                let mut at = 0;
                for len in lens {
                    out.push(all[at + 1..at + len as usize].to_vec());
                    at += len as usize;
                }
                Reply::Gathered(out)
            }
            Op::Barrier => {
                let request = self.world.immediate_barrier();
                self.wait(request, what, timeout, reply);
                Reply::Done
            }
            Op::Fail(_) | Op::Finalize => Reply::Done,
        }
    }

    /// Polls `request` to completion while serving the control channel. When another rank
    /// announces a failure, or the timeout passes (or a signal arrives) and a probe finds where
    /// the others are, the reason goes to `reply` and this thread never returns, so the
    /// request's buffers stay valid.
    fn wait<'a, D: ?Sized, S: mpi::request::Scope<'a>>(&mut self, mut request: Request<'a, D, S>, what: &str, timeout: Duration, reply: &Sender<Reply>) {
        let start = Instant::now();
        let mut probed: Option<Instant> = None;
        // A probe after a signal that every rank answered: they are alive, the wait goes on.
        let mut alive = false;
        let mut answers: BTreeMap<usize, String> = BTreeMap::new();
        let mut polls: u32 = 0;
        loop {
            request = match request.test() {
                Ok(_) => return,
                Err(request) => request,
            };
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(64) {
                std::hint::spin_loop();
                continue;
            }
            if let Some((rank, reason)) = self.poll_control(&mut answers) {
                self.abandon(request, reply, format!("rank {rank} failed while this rank was {}: {reason}", self.waiting));
            }
            let waited = start.elapsed();
            // A signal while waiting: SLURM or the user stopping every rank (they agree to stop
            // at this step), or mpirun stopping the job because a rank died: ask who is there.
            let signalled = crate::interrupt::requested() && !alive;
            if probed.is_none() && (waited > timeout || signalled) {
                answers.clear();
                for peer in (0..self.size).filter(|&p| p != self.rank) {
                    self.control.process_at_rank(peer as i32).send_with_tag(&[0u8][..], PROBE);
                }
                probed = Some(Instant::now());
            }
            if let Some(at) = probed
                && (answers.len() + 1 == self.size || at.elapsed() > if signalled { SIGNALLED_GRACE } else { PROBE_GRACE })
            {
                if signalled && answers.len() + 1 == self.size {
                    alive = true;
                    probed = None;
                    continue;
                }
                let reason = self.stuck_reason(what, waited, timeout, signalled, &answers);
                self.abandon(request, reply, reason);
            }
        }
    }

    /// Why `what` is stuck, from the probe's answers.
    fn stuck_reason(&self, what: &str, waited: Duration, timeout: Duration, signalled: bool, answers: &BTreeMap<usize, String>) -> String {
        let silent: Vec<String> = (0..self.size).filter(|&p| p != self.rank && !answers.contains_key(&p)).map(|p| p.to_string()).collect();
        let mut reason = if signalled {
            format!("a signal (the launcher stopping the job?) arrived while this rank waited {:.1} s at {what}", waited.as_secs_f64())
        } else {
            format!("{what} did not complete within the timeout of {} s", timeout.as_secs_f64())
        };
        if !silent.is_empty() {
            let ranks = if silent.len() == 1 { format!("rank {}", silent[0]) } else { format!("ranks {}", silent.join(", ")) };
            reason.push_str(&format!("; {ranks} did not answer (dead, killed, or stuck outside fulmen's collectives)"));
        }
        for (rank, doing) in answers {
            reason.push_str(&format!("; rank {rank} is {doing}"));
        }
        if silent.is_empty() && !signalled {
            reason.push_str(" — every rank is alive: a rank that is computing may need a longer timeout (DdpStrategy::timeout)");
        }
        reason
    }

    /// Answers probes and collects answers and failure notices; returns a failure another rank
    /// announced.
    fn poll_control(&mut self, answers: &mut BTreeMap<usize, String>) -> Option<(usize, String)> {
        while let Some((message, status)) = self.control.any_process().immediate_matched_probe() {
            let (bytes, _) = (message, status).matched_receive_vec::<u8>();
            let from = status.source_rank() as usize;
            match status.tag() {
                FAILED => {
                    let reason = String::from_utf8_lossy(&bytes).into_owned();
                    self.failure.get_or_insert((from, reason));
                }
                PROBE => self.control.process_at_rank(from as i32).send_with_tag(self.waiting.as_bytes(), ANSWER),
                ANSWER => {
                    answers.insert(from, String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => {}
            }
        }
        self.failure.clone()
    }

    /// Tells every other rank that this one failed.
    fn announce(&mut self, reason: &str) {
        let reason: String = reason.chars().take(2000).collect();
        for peer in (0..self.size).filter(|&p| p != self.rank) {
            self.control.process_at_rank(peer as i32).send_with_tag(reason.as_bytes(), FAILED);
        }
    }

    /// Gives `reason` to the waiting caller, then serves for the rest of the process without
    /// ever completing `request` (MPI cannot cancel a collective; its buffers must stay).
    fn abandon<R>(&mut self, request: R, reply: &Sender<Reply>, reason: String) -> ! {
        let _ = reply.send(Reply::Failed(reason.clone()));
        self.waiting = format!("stopped ({reason})");
        let _kept = request;
        loop {
            match self.queue.recv_timeout(Duration::from_millis(10)) {
                Ok(Job { op: Op::Fail(why), reply, .. }) => {
                    self.announce(&why);
                    let _ = reply.send(Reply::Done);
                }
                // MPI_Finalize would wait for a collective that never completes: skip it.
                Ok(Job { op: Op::Finalize, reply, .. }) => {
                    let _ = reply.send(Reply::Done);
                }
                Ok(Job { what, reply, .. }) => {
                    let _ = reply.send(Reply::Failed(format!("{what} cannot run: an earlier collective failed ({reason})")));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::park(),
            }
            self.poll_control(&mut BTreeMap::new());
        }
    }
}
