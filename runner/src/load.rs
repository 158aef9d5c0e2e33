//! Loading one type the way TFB's scripts did: a primer, a warmup at the highest concurrency,
//! then every level of the profile (each repeated with `--repeat`, the median kept), with the
//! server's and the database's CPU and peak memory sampled from `/proc` around each run of wrk.
//! Then, with `--latency-rates`, the fixed-rate latency runs at fractions of the type's headline
//! requests/s, by oha.

use std::{
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use conformance::TestType;

use crate::{
    oha::{self, OhaRun},
    procstat::{self, PeakMemory},
    profile::Profile,
    ranking,
    results::{Entry, FixedRateEntry, LatencyMs},
    server::Server,
    wrk::{self, WrkRun},
};

/// What one type's load measured.
pub struct TypeLoad {
    /// One entry per level, in level order.
    pub levels: Vec<Entry>,
    /// One per `--latency-rates` fraction, in that order.
    pub fixed_rate: Vec<FixedRateEntry>,
}

/// Loads one type level by level and returns an entry per level. `raw` receives wrk's output.
pub struct Load<'a> {
    pub profile: &'a Profile,
    pub server: &'a Server,
    pub database_pid: Option<u32>,
    pub pipeline_script: &'a Path,
    /// Shows what runs now and the time left; hidden with `--quiet`.
    pub progress: &'a indicatif::ProgressBar,
    /// Checked before every run of wrk: once set, no further level starts.
    pub interrupted: &'a AtomicBool,
}

const ACCEPT_JSON: &str = conformance::types::ACCEPT_JSON;
const ACCEPT_PLAINTEXT: &str = conformance::types::ACCEPT_PLAINTEXT;

impl Load<'_> {
    pub fn run(&self, test: &str, test_type: TestType, path: &str, raw: &mut String) -> TypeLoad {
        let url = format!("{}{path}", self.server.base_url());
        let profile = self.profile;
        let cpus = thread::available_parallelism().map_or(1, usize::from) as u32;
        // TFB loads fortunes with the JSON Accept header, not the HTML one it verifies with.
        let accept = if test_type == TestType::Plaintext {
            ACCEPT_PLAINTEXT
        } else {
            ACCEPT_JSON
        };
        let query_style = matches!(
            test_type,
            TestType::Query | TestType::Update | TestType::CachedQuery
        );
        let warm_url = if query_style {
            format!("{url}2")
        } else {
            url.clone()
        };
        let warm = |connections: u32, threads: u32, seconds: u32, label: &str, raw: &mut String| {
            if seconds == 0
                || self.interrupted.load(Ordering::SeqCst)
                || self.server.exited().is_some()
            {
                return;
            }
            self.announce(&format!("{test} {test_type} {label}"), seconds);
            let run = WrkRun {
                url: &warm_url,
                accept,
                connections,
                threads,
                seconds,
                pipeline: 1,
            };
            match run.run(self.pipeline_script) {
                Ok(output) => raw.push_str(&format!("{label}\n{output}\n")),
                Err(error) => raw.push_str(&format!("{label}\n{error:#}\n")),
            }
            pause(profile.pause_after_warmup_seconds);
            self.progress
                .inc(u64::from(seconds + profile.pause_after_warmup_seconds));
        };
        warm(8, 8, profile.primer_seconds, "Primer", raw);
        warm(
            profile.max_concurrency(),
            cpus,
            profile.warmup_seconds,
            "Warmup",
            raw,
        );
        let mut entries = Vec::new();
        for Level {
            entry,
            url: level_url,
            connections,
            threads,
            pipeline,
        } in levels(profile, test_type, &url, cpus)
        {
            if self.interrupted.load(Ordering::SeqCst) {
                break;
            }
            self.announce(
                &format!("{test} {test_type} {}", entry.level()),
                profile.duration_seconds,
            );
            let run = WrkRun {
                url: &level_url,
                accept,
                connections,
                threads,
                seconds: profile.duration_seconds,
                pipeline,
            };
            let label = if entry.queries.is_some() {
                "Queries"
            } else {
                "Concurrency"
            };
            raw.push_str(&format!("{label}: {}\n", entry.level()));
            if let Some(exit) = self.server.exited() {
                // Loading a dead port would only measure connection errors.
                entries.push(Entry {
                    error: Some(format!("not run: {exit}")),
                    ..entry
                });
                continue;
            }
            let mut repeats = Vec::new();
            let mut died = None;
            for _ in 0..profile.repeat.max(1) {
                if self.interrupted.load(Ordering::SeqCst) && !repeats.is_empty() {
                    break;
                }
                repeats.push(self.measure(entry.clone(), &run, raw));
                if let Some(exit) = self.server.exited() {
                    died = Some(format!("{exit} during this level"));
                    break;
                }
                pause(profile.pause_between_levels_seconds);
                self.progress.inc(u64::from(
                    profile.duration_seconds + profile.pause_between_levels_seconds,
                ));
            }
            let mut level = median(repeats);
            // Figures of a level the server did not survive are no result, even from a repeat
            // that finished before it died.
            level.error = died.or(level.error);
            entries.push(level);
        }
        let fixed_rate = self.fixed_rates(test, test_type, &url, accept, &entries, raw);
        TypeLoad {
            levels: entries,
            fixed_rate,
        }
    }

    /// The fixed-rate runs after the levels: at each fraction of the headline's requests/s, on
    /// the headline's URL and connections.
    fn fixed_rates(
        &self,
        test: &str,
        test_type: TestType,
        url: &str,
        accept: &str,
        levels: &[Entry],
        raw: &mut String,
    ) -> Vec<FixedRateEntry> {
        let profile = self.profile;
        let rates = profile.latency_rates_of(test_type);
        let Some(headline) = ranking::headline(&test_type.to_string(), levels) else {
            return Vec::new();
        };
        let url = match headline.queries {
            Some(queries) => format!("{url}{queries}"),
            None => url.to_owned(),
        };
        let connections = headline.concurrency.unwrap_or(profile.query_concurrency);
        let mut entries = Vec::new();
        for &fraction in rates {
            if self.interrupted.load(Ordering::SeqCst) || self.server.exited().is_some() {
                break;
            }
            let label = format!("{:.0} % of {}", 100.0 * fraction, headline.level());
            self.announce(
                &format!("{test} {test_type} fixed rate {label}"),
                profile.duration_seconds,
            );
            let run = OhaRun {
                url: &url,
                accept,
                connections,
                rate: fraction * headline.requests_per_second,
                seconds: profile.duration_seconds,
            };
            let mut entry = FixedRateEntry {
                fraction,
                target_rate: run.rate,
                connections,
                queries: headline.queries,
                duration_seconds: profile.duration_seconds,
                ..FixedRateEntry::default()
            };
            let server_pid = self.server.pid();
            let cpu_before = server_pid.map(procstat::cpu_seconds);
            entry.start_time = unix_now();
            let output = run.run();
            entry.end_time = unix_now();
            entry.server_cpu_seconds = server_pid
                .zip(cpu_before)
                .map(|(pid, before)| procstat::cpu_seconds(pid) - before);
            raw.push_str(&format!("Fixed rate: {label}\n"));
            match output.and_then(|json| {
                raw.push_str(&json);
                raw.push('\n');
                oha::parse(&json)
            }) {
                Ok(measured) => {
                    entry.total_requests = measured.total_requests;
                    entry.achieved_rate = measured.requests_per_second;
                    entry.errors = measured.errors;
                    entry.latency_ms = measured.latency_ms;
                }
                Err(error) => {
                    raw.push_str(&format!("{error:#}\n"));
                    entry.error = Some(format!("{error:#}"));
                }
            }
            entries.push(entry);
            pause(profile.pause_between_levels_seconds);
            self.progress.inc(u64::from(
                profile.duration_seconds + profile.pause_between_levels_seconds,
            ));
        }
        entries
    }

    fn measure(&self, mut entry: Entry, run: &WrkRun, raw: &mut String) -> Entry {
        let server_pid = self.server.pid();
        let pids: Vec<u32> = server_pid.into_iter().chain(self.database_pid).collect();
        let peaks = PeakMemory::start(pids.clone());
        let cpu_before: Vec<f64> = pids.iter().map(|pid| procstat::cpu_seconds(*pid)).collect();
        entry.start_time = unix_now();
        let output = run.run(self.pipeline_script);
        entry.end_time = unix_now();
        let peaks = peaks.finish();
        let cpu: Vec<f64> = pids
            .iter()
            .zip(&cpu_before)
            .map(|(pid, before)| procstat::cpu_seconds(*pid) - before)
            .collect();
        let mut index = 0;
        if server_pid.is_some() {
            entry.server_cpu_seconds = Some(cpu[index]);
            entry.server_peak_memory_bytes = Some(peaks[index]);
            index += 1;
        }
        if self.database_pid.is_some() {
            entry.database_cpu_seconds = Some(cpu[index]);
            entry.database_peak_memory_bytes = Some(peaks[index]);
        }
        let parsed = output.and_then(|output| {
            raw.push_str(&output);
            raw.push('\n');
            wrk::parse(&output)
        });
        match parsed {
            Ok(result) => {
                entry.total_requests = result.total_requests;
                entry.latency_avg = result.latency_avg;
                entry.latency_stdev = result.latency_stdev;
                entry.latency_max = result.latency_max;
                entry.connect = result.socket_errors.connect;
                entry.read = result.socket_errors.read;
                entry.write = result.socket_errors.write;
                entry.timeout = result.socket_errors.timeout;
                entry.non_2xx = result.non_2xx;
                entry.requests_per_second = result.requests_per_second;
                entry.latency_ms = LatencyMs {
                    avg: result.latency_avg_ms,
                    max: result.latency_max_ms,
                    p50: result.p50_ms,
                    p75: result.p75_ms,
                    p90: result.p90_ms,
                    p99: result.p99_ms,
                };
            }
            Err(error) => entry.error = Some(format!("{error:#}")),
        }
        entry
    }

    fn announce(&self, what: &str, seconds: u32) {
        self.progress.set_message(format!("{what} ({seconds} s)"));
        tracing::info!("{what}: {seconds} s");
    }
}

/// Seconds one type's load takes with this profile, for the progress bar.
pub fn planned_seconds(profile: &Profile, test_type: TestType) -> u64 {
    let warm = [profile.primer_seconds, profile.warmup_seconds]
        .into_iter()
        .filter(|&seconds| seconds > 0)
        .map(|seconds| u64::from(seconds + profile.pause_after_warmup_seconds))
        .sum::<u64>();
    let levels = levels(profile, test_type, "", 1).len() as u64;
    let per_level = u64::from(profile.duration_seconds + profile.pause_between_levels_seconds);
    let fixed_rate_runs = profile.latency_rates_of(test_type).len() as u64;
    warm + (levels * u64::from(profile.repeat.max(1)) + fixed_rate_runs) * per_level
}

/// One level of a type: the entry it fills and how wrk loads it.
struct Level {
    entry: Entry,
    url: String,
    connections: u32,
    threads: u32,
    pipeline: u32,
}

/// The levels of a type under this profile, in order (the one place they are picked): rows per
/// request for the `queries`-style types, pipelined connections for plaintext, connections for
/// the others. wrk gets at most one thread per CPU and never more threads than connections.
fn levels(profile: &Profile, test_type: TestType, url: &str, cpus: u32) -> Vec<Level> {
    match test_type {
        TestType::Query | TestType::Update | TestType::CachedQuery => profile
            .rows_per_request_levels(test_type)
            .iter()
            .map(|&queries| Level {
                entry: Entry {
                    queries: Some(queries),
                    ..Entry::default()
                },
                url: format!("{url}{queries}"),
                connections: profile.query_concurrency,
                threads: cpus,
                pipeline: 1,
            })
            .collect(),
        TestType::Plaintext => profile
            .pipeline_concurrency_levels
            .iter()
            .map(|&connections| Level {
                entry: Entry {
                    concurrency: Some(connections),
                    pipeline: Some(profile.pipeline_depth),
                    ..Entry::default()
                },
                url: url.to_owned(),
                connections,
                threads: connections.min(cpus),
                pipeline: profile.pipeline_depth,
            })
            .collect(),
        TestType::Db | TestType::Json | TestType::Fortune => profile
            .concurrency_levels
            .iter()
            .map(|&connections| Level {
                entry: Entry {
                    concurrency: Some(connections),
                    ..Entry::default()
                },
                url: url.to_owned(),
                connections,
                threads: connections.min(cpus),
                pipeline: 1,
            })
            .collect(),
    }
}

/// The repeat with the median requests/s, carrying every repeat's figure when there were several.
fn median(mut repeats: Vec<Entry>) -> Entry {
    let runs: Vec<f64> = repeats
        .iter()
        .filter(|entry| entry.error.is_none())
        .map(|entry| entry.requests_per_second)
        .collect();
    repeats.sort_by(|a, b| {
        (a.error.is_some(), a.requests_per_second)
            .partial_cmp(&(b.error.is_some(), b.requests_per_second))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let measured = repeats.iter().filter(|entry| entry.error.is_none()).count();
    let mut chosen = if measured > 0 {
        repeats.swap_remove(measured / 2)
    } else {
        repeats.swap_remove(0)
    };
    if runs.len() > 1 {
        chosen.requests_per_second_runs = runs;
    }
    chosen
}

fn pause(seconds: u32) {
    thread::sleep(Duration::from_secs(u64::from(seconds)));
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
