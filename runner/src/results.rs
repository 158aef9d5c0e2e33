//! The results of a run: `results.json` in TFB's `rawData` layout plus what TFB never kept
//! (requests/s, latency percentiles, CPU and memory, the verification reports, the environment),
//! versioned; and `summary.md`, the best figure per test and type.

use std::{collections::BTreeMap, fmt::Write as _, fs, path::Path, process::Command};

use anyhow::Context;

use serde::{Deserialize, Serialize};

use conformance::TestType;

use crate::profile::Profile;

/// Bumped whenever a field changes meaning or disappears.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub format_version: u32,
    pub name: String,
    pub start_time: u64,
    pub end_time: u64,
    pub environment: Environment,
    pub profile: Profile,
    /// TFB's own top-level keys.
    pub concurrency_levels: Vec<u32>,
    pub pipeline_concurrency_levels: Vec<u32>,
    pub query_intervals: Vec<u32>,
    /// TFB's `cachedQueryIntervals`.
    #[serde(default)]
    pub cached_query_intervals: Vec<u32>,
    pub duration: u32,
    /// TFB's `verify`: test name → type → pass, warn or fail.
    pub verify: BTreeMap<String, BTreeMap<String, conformance::Level>>,
    /// The full conformance report behind each verdict (as JSON, so results files read back).
    pub verification: BTreeMap<String, serde_json::Value>,
    /// type → test name → one entry per level, in level order.
    pub raw_data: BTreeMap<String, BTreeMap<String, Vec<Entry>>>,
    /// test name → type → why it was not loaded.
    pub skipped: BTreeMap<String, BTreeMap<String, String>>,
    pub succeeded: BTreeMap<String, Vec<String>>,
    pub failed: BTreeMap<String, Vec<String>>,
    /// CPU the runner itself used (not wrk, the servers or the database), to show it stays out
    /// of the way.
    #[serde(default)]
    pub runner_cpu_seconds: f64,
}

/// One level of one type: TFB's keys, then ours.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<u32>,
    pub total_requests: u64,
    pub latency_avg: String,
    pub latency_stdev: String,
    pub latency_max: String,
    pub start_time: u64,
    pub end_time: u64,
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    #[serde(rename = "5xx")]
    pub non_2xx: u64,
    /// The median of the repeats with `--repeat`; the one measurement otherwise.
    pub requests_per_second: f64,
    /// Every repeat's requests/s, with `--repeat N` (N > 1); the rest of the entry is the
    /// median repeat's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests_per_second_runs: Vec<f64>,
    pub latency_ms: LatencyMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_peak_memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_cpu_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_peak_memory_bytes: Option<u64>,
    /// Set when wrk produced no result for this level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    pub avg: f64,
    pub max: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
}

impl Entry {
    /// "c=256", "q=20" or "c=1024 ×16".
    pub fn level(&self) -> String {
        match (self.queries, self.concurrency, self.pipeline) {
            (Some(queries), _, _) => format!("q={queries}"),
            (None, Some(concurrency), Some(depth)) => format!("c={concurrency} ×{depth}"),
            (None, Some(concurrency), None) => format!("c={concurrency}"),
            _ => String::new(),
        }
    }
}

/// The machine and software a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub kernel: String,
    pub postgres_version: String,
    pub wrk_version: String,
    pub git_commit: String,
    pub runner_version: String,
    /// Linux's `kernel.sched_autogroup_enabled` during the run (absent where the kernel has no
    /// such setting, and in results written before it was recorded).
    #[serde(default)]
    pub sched_autogroup: Option<bool>,
}

impl Environment {
    pub fn capture(postgres_version: String, workspace: &Path) -> Self {
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_default();
        let command_line = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .current_dir(workspace)
                .output()
                .ok()
                .map(|output| {
                    let text = String::from_utf8_lossy(&output.stdout).into_owned()
                        + &String::from_utf8_lossy(&output.stderr);
                    text.lines().next().unwrap_or_default().trim().to_owned()
                })
                .unwrap_or_default()
        };
        Self {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(1, usize::from),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            postgres_version,
            wrk_version: command_line("wrk", &["-v"]),
            git_commit: command_line("git", &["rev-parse", "HEAD"]),
            runner_version: env!("CARGO_PKG_VERSION").to_owned(),
            sched_autogroup: fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
                .ok()
                .map(|setting| setting.trim() != "0"),
        }
    }

    /// A warning for runs measured with autogroup scheduling on, which distorts the figures
    /// (measured on a 2-core machine: /db at 256 connections 1.7× faster with it off, all
    /// processes in the same session) and makes them incomparable with runs that had it off.
    pub fn scheduler_note(&self) -> Option<&'static str> {
        (self.sched_autogroup == Some(true)).then_some(
            "Linux's autogroup scheduling was on (kernel.sched_autogroup_enabled=1): on a \
             2-core machine it cost the database types up to 1.7×, and it makes a run \
             incomparable with one that had it off. `sysctl kernel.sched_autogroup_enabled=0` \
             before benchmarking (needs root).",
        )
    }
}

impl Results {
    pub fn write(&self, directory: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(directory)?;
        fs::write(
            directory.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
        self.write_reports(directory)
    }

    /// `summary.md` and `report.html`, from these results.
    pub fn write_reports(&self, directory: &Path) -> anyhow::Result<()> {
        fs::write(directory.join("summary.md"), self.summary())?;
        fs::write(directory.join("report.html"), crate::report::render(self)?)?;
        Ok(())
    }

    /// Reads a run's `results.json`.
    pub fn read(directory: &Path) -> anyhow::Result<Self> {
        let path = directory.join("results.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let results: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if results.format_version != FORMAT_VERSION {
            anyhow::bail!(
                "{} has format version {}; this runner reads version {FORMAT_VERSION}",
                path.display(),
                results.format_version
            );
        }
        Ok(results)
    }

    /// The best requests/s per test and type, with the level it came from.
    /// Records that `test`'s `test_type` was not loaded, and why: it counts as failed.
    pub fn skip(&mut self, test: &str, test_type: TestType, reason: String) {
        let type_name = test_type.to_string();
        self.skipped
            .entry(test.to_owned())
            .or_default()
            .insert(type_name.clone(), reason);
        self.failed
            .entry(type_name)
            .or_default()
            .push(test.to_owned());
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark {}\n", self.name);
        let _ = writeln!(
            out,
            "Profile `{}` ({} s per level), {} × {}, PostgreSQL {}, {}, commit {}.\n",
            self.profile.name,
            self.profile.duration_seconds,
            self.environment.logical_cpus,
            self.environment.cpu_model,
            self.environment.postgres_version,
            self.environment.wrk_version,
            self.environment
                .git_commit
                .get(..12)
                .unwrap_or(&self.environment.git_commit),
        );
        let wall = self.end_time.saturating_sub(self.start_time).max(1) as f64;
        let _ = writeln!(
            out,
            "{wall:.0} s in all; the runner itself used {:.1} s of CPU ({:.2} % of the run).\n",
            self.runner_cpu_seconds,
            100.0 * self.runner_cpu_seconds / wall
        );
        if let Some(note) = self.environment.scheduler_note() {
            let _ = writeln!(out, "**Note:** {note}\n");
        }
        let _ = writeln!(
            out,
            "| test | type | verification | best req/s | at | p99 there | errors |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---|---:|---:|");
        for (test, verdicts) in &self.verify {
            for (test_type, verdict) in verdicts {
                let entries = self
                    .raw_data
                    .get(test_type)
                    .and_then(|tests| tests.get(test));
                let best = entries.and_then(|entries| {
                    entries
                        .iter()
                        .filter(|entry| entry.error.is_none())
                        .max_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second))
                });
                match best {
                    Some(best) => {
                        let errors: u64 = entries
                            .into_iter()
                            .flatten()
                            .map(|entry| {
                                entry.connect
                                    + entry.read
                                    + entry.write
                                    + entry.timeout
                                    + entry.non_2xx
                            })
                            .sum();
                        let _ = writeln!(
                            out,
                            "| {test} | {test_type} | {verdict} | {:.0} | {} | {:.2} ms | {errors} |",
                            best.requests_per_second,
                            best.level(),
                            best.latency_ms.p99
                        );
                    }
                    None => {
                        let level_error = entries
                            .into_iter()
                            .flatten()
                            .find_map(|entry| entry.error.as_deref());
                        let reason = self
                            .skipped
                            .get(test)
                            .and_then(|reasons| reasons.get(test_type))
                            .map(String::as_str)
                            .or(level_error)
                            .unwrap_or("not loaded");
                        let _ = writeln!(
                            out,
                            "| {test} | {test_type} | {verdict} | — | {reason} | | |"
                        );
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    /// report.html and summary.md are rebuilt from results.json, so every figure must read back
    /// exactly as it was written.
    #[test]
    fn figures_read_back_exactly() {
        // Values the default serde_json parser reads back one bit off.
        let figures = [
            109.980_200_000_000_01_f64,
            43.475_300_000_000_004,
            1.604_780_272_776_142_7,
            100_780.714_285_714_29,
        ];
        let text = serde_json::to_string(&figures).unwrap();
        let back: Vec<f64> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, figures);
    }
}
