//! CPU time and memory of processes, read from `/proc` while a level runs.

use std::{
    fs,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::Duration,
};

/// User plus system CPU time of `pid` and all its descendants, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    family(pid)
        .iter()
        .filter_map(|pid| stat_fields(*pid))
        .map(|fields| {
            let user: f64 = fields
                .get(11)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0);
            let system: f64 = fields
                .get(12)
                .and_then(|value| value.parse().ok())
                .unwrap_or(0.0);
            (user + system) / ticks
        })
        .sum()
}

/// Memory of these processes, in bytes: the proportional set size, which splits shared pages
/// among the processes that map them, so PostgreSQL's shared buffers count once rather than once
/// per backend. Falls back to the resident size where `smaps_rollup` is missing.
pub fn memory_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| {
            let field = |file: &str, name: &str| {
                let text = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
                let line = text.lines().find(|line| line.starts_with(name))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            };
            field("smaps_rollup", "Pss:").or_else(|| field("status", "VmRSS:"))
        })
        .map(|kib| kib * 1024)
        .sum()
}

/// CPU time this process (the runner itself, not its children) has used, in seconds.
pub fn own_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds =
            |time: nix::sys::time::TimeVal| time.tv_sec() as f64 + time.tv_usec() as f64 / 1e6;
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may contain spaces).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    Some(after_name.split_whitespace().map(str::to_owned).collect())
}

/// `pid` and every process below it.
fn family(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(parent) = stat_fields(child).and_then(|fields| fields.get(1)?.parse().ok()) {
            parents.push((child, parent));
        }
    }
    let mut members = vec![pid];
    let mut index = 0;
    while index < members.len() {
        let current = members[index];
        members.extend(
            parents
                .iter()
                .filter(|(_, parent)| *parent == current)
                .map(|(child, _)| *child),
        );
        index += 1;
    }
    members
}

/// How often memory is sampled while a level runs.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(500);

/// Samples the memory of some process families while a level runs, keeping each peak. The
/// families are found once, at the start: a level's processes (the server, PostgreSQL and its
/// backends for the benchmark's connections) do not change while it runs. The first sample is
/// taken in `start` and the last in `finish`, so a peak never rests on the sampler thread
/// getting a core on a busy machine.
pub struct PeakMemory {
    stop: Arc<AtomicBool>,
    peaks: Vec<Arc<AtomicU64>>,
    families: Arc<Vec<Vec<u32>>>,
    sampler: Option<thread::JoinHandle<()>>,
}

fn sample(families: &[Vec<u32>], peaks: &[Arc<AtomicU64>]) {
    for (members, peak) in families.iter().zip(peaks) {
        peak.fetch_max(memory_bytes(members), Ordering::Relaxed);
    }
}

impl PeakMemory {
    pub fn start(pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Vec<Arc<AtomicU64>> = pids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
        let families: Arc<Vec<Vec<u32>>> = Arc::new(pids.iter().map(|pid| family(*pid)).collect());
        sample(&families, &peaks);
        let sampler = {
            let (stop, peaks, families) = (Arc::clone(&stop), peaks.clone(), Arc::clone(&families));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(SAMPLE_INTERVAL);
                    sample(&families, &peaks);
                }
            })
        };
        Self {
            stop,
            peaks,
            families,
            sampler: Some(sampler),
        }
    }

    /// Stops sampling and returns each family's peak, in the order given to `start`.
    pub fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        sample(&self.families, &self.peaks);
        self.peaks
            .iter()
            .map(|peak| peak.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU time is checked against getrusage's count of the same process, not against the
    /// clock: on a busy machine the loop may get little of a core, but whatever it gets, both
    /// sources see.
    #[test]
    fn measures_this_process() {
        let pid = std::process::id();
        let before = cpu_seconds(pid);
        let own_before = own_cpu_seconds();
        let mut x = 0u64;
        while own_cpu_seconds() - own_before < 0.3 {
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
        }
        assert!(x != 1);
        let measured = cpu_seconds(pid) - before;
        // /proc counts in clock ticks (10 ms), getrusage in microseconds.
        assert!(
            measured > 0.2,
            "/proc says {measured} s of CPU, getrusage 0.3 s"
        );
    }

    /// A peak exists even when the sampler thread never ran: `start` and `finish` sample too.
    #[test]
    fn a_peak_is_sampled_even_without_the_sampler_thread() {
        let peak = PeakMemory::start(vec![std::process::id()]);
        assert!(peak.finish()[0] > 1 << 20);
    }
}
