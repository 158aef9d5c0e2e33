//! What `tfb verify` and `tfb benchmark` do: pick the tests, build them, start the database and
//! each server in turn, verify it with the conformance crate, and load every type that did not
//! fail, level by level, the way TFB's scripts did.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use conformance::{Level, Report, TestType};
use tfb_harness::{
    build,
    discover::{self, Implementation, TestConfig},
    server::ServerProcess,
    workspace_root,
};

use crate::{
    procstat::{self, PeakMemory},
    profile::Profile,
    results::{Entry, LatencyMs},
    wrk::{self, WrkRun},
};

/// One test of one implementation's `benchmark_config.json`.
#[derive(Debug, Clone)]
pub struct SelectedTest {
    pub implementation: Implementation,
    pub key: String,
    /// TFB's name: `axum`, `axum-pool`.
    pub name: String,
    pub config: TestConfig,
}

/// The tests named in `names` (all of them when empty), in discovery order.
pub fn select(names: &[String]) -> anyhow::Result<Vec<SelectedTest>> {
    let mut all = Vec::new();
    for implementation in discover::implementations(&workspace_root())? {
        for (key, config) in implementation.config.tests() {
            all.push(SelectedTest {
                name: implementation.test_name(key),
                key: key.clone(),
                config: config.clone(),
                implementation: implementation.clone(),
            });
        }
    }
    if names.is_empty() {
        return Ok(all);
    }
    for name in names {
        if !all.iter().any(|test| &test.name == name) {
            let known: Vec<&str> = all.iter().map(|test| test.name.as_str()).collect();
            bail!(
                "no test named {name:?}; the tests are: {}",
                known.join(", ")
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|test| names.contains(&test.name))
        .collect())
}

/// Parses `--type` values.
pub fn types(names: &[String]) -> anyhow::Result<Vec<TestType>> {
    if names.is_empty() {
        return Ok(TestType::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| {
            TestType::parse(name).with_context(|| {
                format!("unknown test type {name:?} (db, json, query, update, fortune, plaintext, cached-query)")
            })
        })
        .collect()
}

/// Builds the selected tests' binaries with the given cargo profile.
pub fn build_all(
    tests: &[SelectedTest],
    profile: &str,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut packages: Vec<&str> = tests
        .iter()
        .map(|test| test.implementation.package.as_str())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    eprintln!(
        "tfb: building {} with the {profile} profile",
        packages.join(", ")
    );
    Ok(build::build(&packages, profile)?.into_iter().collect())
}

/// Client mode: waits until the server at `url` (`http://host:port`) accepts a connection, trying
/// every half second for up to `patience`; with no patience, one try.
pub fn wait_for_server(url: &str, patience: Duration) -> anyhow::Result<()> {
    let authority = url
        .strip_prefix("http://")
        .with_context(|| format!("--server-url {url:?} must start with http://"))?
        .split('/')
        .next()
        .unwrap_or_default();
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let deadline = std::time::Instant::now() + patience;
    loop {
        // Resolved on every try: in a fresh container network the name may not exist yet.
        let attempt = std::net::ToSocketAddrs::to_socket_addrs(authority.as_str())
            .map_err(anyhow::Error::from)
            .and_then(|mut addresses| {
                let address = addresses
                    .next()
                    .with_context(|| format!("{authority} resolves to no address"))?;
                std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
                Ok(())
            });
        match attempt {
            Ok(()) => return Ok(()),
            Err(error) if std::time::Instant::now() >= deadline => {
                bail!(
                    "the server at {url} did not accept a connection within {} s: {error:#}",
                    patience.as_secs()
                )
            }
            Err(_) => thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// How much of a crashed server's output its error keeps.
const LAST_OUTPUT_LINES: usize = 3;

/// Where the server under test runs.
pub enum Server {
    /// A process we started, whose CPU and memory we can read.
    Local(ServerProcess),
    /// Client mode: a server someone else runs.
    Remote(String),
}

impl Server {
    pub fn start(test: &SelectedTest, binary: &Path, database_url: &str) -> anyhow::Result<Self> {
        let ready = test.config.urls().first().map_or("/", |(_, url)| *url);
        Ok(Server::Local(ServerProcess::start(
            binary,
            database_url,
            ready,
        )?))
    }

    pub fn base_url(&self) -> String {
        match self {
            Server::Local(process) => format!("http://{}", process.address()),
            Server::Remote(url) => url.trim_end_matches('/').to_owned(),
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Server::Local(process) => Some(process.pid().as_raw() as u32),
            Server::Remote(_) => None,
        }
    }

    /// How a local server ended when it exited on its own, with its last lines of output (a
    /// panic message, an out-of-memory kill). `None` while it runs, and always for a remote
    /// server, whose process is out of sight (a dead one shows as wrk's connect errors).
    pub fn exited(&self) -> Option<String> {
        let Server::Local(process) = self else {
            return None;
        };
        let status = process.exited()?;
        let output = process.output();
        let last: Vec<&str> = output
            .iter()
            .rev()
            .take(LAST_OUTPUT_LINES)
            .rev()
            .map(String::as_str)
            .collect();
        Some(if last.is_empty() {
            format!("the server exited ({status})")
        } else {
            format!(
                "the server exited ({status}); its last output: {}",
                last.join(" | ")
            )
        })
    }

    /// Stops a local server with SIGTERM; a remote one is left alone. A server that already
    /// exited on its own is reported by [`Self::exited`], not here.
    pub fn stop(self) -> anyhow::Result<()> {
        if let Server::Local(mut process) = self {
            if process.exited().is_some() {
                return Ok(());
            }
            let status = process.terminate()?;
            if !status.success() {
                bail!("the server exited with {status} after SIGTERM");
            }
        }
        Ok(())
    }
}

/// Verifies one test's selected types with the conformance crate.
pub fn verify(
    runtime: &tokio::runtime::Runtime,
    test: &SelectedTest,
    server: &Server,
    database_url: &str,
    types: &[TestType],
) -> anyhow::Result<Report> {
    let target = conformance::Target::new(&server.base_url(), Some(database_url.to_owned()))
        .with_config(
            &test.implementation.dir.join("benchmark_config.json"),
            &test.key,
        )?
        .only(types);
    Ok(runtime.block_on(conformance::verify(&target)))
}

/// Why a type is not loaded, or `None` when verification let it through (pass or warn).
pub fn skip_reason(report: &Report, test_type: TestType) -> Option<String> {
    let type_report = report.get(test_type)?;
    (type_report.verdict == Level::Fail).then(|| {
        let first = type_report
            .findings
            .iter()
            .find(|finding| finding.level == Level::Fail && !finding.strict)
            .map(|finding| {
                finding
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        format!("verification failed: {first}")
    })
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
    pub fn run(&self, test: &str, test_type: TestType, path: &str, raw: &mut String) -> Vec<Entry> {
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
        let levels: Vec<(Entry, String, u32, u32, u32)> = match test_type {
            TestType::Query | TestType::Update | TestType::CachedQuery => profile
                .rows_per_request_levels(test_type)
                .iter()
                .map(|&queries| {
                    let entry = Entry {
                        queries: Some(queries),
                        ..Entry::default()
                    };
                    (
                        entry,
                        format!("{url}{queries}"),
                        profile.query_concurrency,
                        cpus,
                        1,
                    )
                })
                .collect(),
            TestType::Plaintext => profile
                .pipeline_concurrency_levels
                .iter()
                .map(|&connections| {
                    let entry = Entry {
                        concurrency: Some(connections),
                        pipeline: Some(profile.pipeline_depth),
                        ..Entry::default()
                    };
                    (
                        entry,
                        url.clone(),
                        connections,
                        connections.min(cpus),
                        profile.pipeline_depth,
                    )
                })
                .collect(),
            _ => profile
                .concurrency_levels
                .iter()
                .map(|&connections| {
                    let entry = Entry {
                        concurrency: Some(connections),
                        ..Entry::default()
                    };
                    (entry, url.clone(), connections, connections.min(cpus), 1)
                })
                .collect(),
        };
        let mut entries = Vec::new();
        for (entry, level_url, connections, threads, pipeline) in levels {
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

    /// Seconds one type's load takes with this profile, for the progress bar.
    pub fn planned_seconds(profile: &Profile, test_type: TestType) -> u64 {
        let warm = u64::from(profile.primer_seconds + profile.warmup_seconds)
            + if profile.primer_seconds > 0 {
                u64::from(profile.pause_after_warmup_seconds)
            } else {
                0
            }
            + if profile.warmup_seconds > 0 {
                u64::from(profile.pause_after_warmup_seconds)
            } else {
                0
            };
        let levels = match test_type {
            TestType::Query | TestType::Update | TestType::CachedQuery => {
                profile.rows_per_request_levels(test_type).len()
            }
            TestType::Plaintext => profile.pipeline_concurrency_levels.len(),
            _ => profile.concurrency_levels.len(),
        } as u64;
        let per_level = u64::from(profile.duration_seconds + profile.pause_between_levels_seconds);
        warm + levels * u64::from(profile.repeat.max(1)) * per_level
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
