//! What the process has used: CPU time over all its threads and its peak resident memory, read
//! from `getrusage`, so a run can say how busy it kept the cores (`Usage::since`).

use std::time::{Duration, Instant};

/// A reading of the wall clock and the process's CPU time.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    wall: Instant,
    cpu: Duration,
}

/// What a stretch of the run used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of all the process's threads (user + system).
    pub cpu: Duration,
}

impl Span {
    /// CPU time per wall time, in percent of one core (200 % is two cores busy throughout).
    pub fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

impl Usage {
    /// Now.
    pub fn now() -> Self {
        Usage { wall: Instant::now(), cpu: process_cpu() }
    }

    /// What was used since `self` was read.
    pub fn since(&self) -> Span {
        Span { wall: self.wall.elapsed(), cpu: process_cpu().saturating_sub(self.cpu) }
    }
}

fn rusage() -> Option<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into the pointer it is given, which points to a
    // zeroed value of that type; RUSAGE_SELF is always a valid target.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    // SAFETY: zeroed is a valid `rusage` (plain integers), and getrusage filled it on success.
    ok.then(|| unsafe { usage.assume_init() })
}

fn duration(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// CPU time of all threads of this process so far (zero where `getrusage` fails).
pub fn process_cpu() -> Duration {
    rusage().map_or(Duration::ZERO, |u| duration(u.ru_utime) + duration(u.ru_stime))
}

/// The process's peak resident memory in bytes (`None` where `getrusage` fails).
pub fn peak_rss_bytes() -> Option<u64> {
    // Linux reports kilobytes.
    rusage().map(|u| u.ru_maxrss.max(0) as u64 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_as_cpu_time_and_a_buffer_as_peak_rss() {
        let start = Usage::now();
        let mut x = 0u64;
        // Spin until 50 ms of CPU time are counted; a reading that never moves fails at 20 s.
        while start.since().cpu < Duration::from_millis(50) {
            assert!(start.since().wall < Duration::from_secs(20), "no CPU time counted for a busy thread");
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        let before = peak_rss_bytes().expect("getrusage");
        let big = std::hint::black_box(vec![1u8; 64 << 20]);
        assert!(peak_rss_bytes().expect("getrusage") >= before.max(big.len() as u64), "peak RSS counts a 64 MiB buffer");
    }

    #[test]
    fn cpu_percent_is_cpu_time_over_wall_time() {
        let span = Span { wall: Duration::from_secs(4), cpu: Duration::from_secs(7) };
        assert_eq!(span.cpu_percent(), 175.0);
    }
}
