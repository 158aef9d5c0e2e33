//! The results of a run, as data: `results.json` in TFB's `rawData` layout plus what TFB never
//! kept (requests/s, latency percentiles, CPU and memory, the verification reports, the
//! environment), versioned, written and read back here. Rendering them is [`crate::output`]'s job.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::Context;

use serde::{Deserialize, Serialize};

use conformance::{Level, TestType};

use crate::{environment::Environment, profile::Profile};

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
    pub verify: BTreeMap<String, BTreeMap<String, Level>>,
    /// The full conformance report behind each verdict.
    pub verification: BTreeMap<String, conformance::Report>,
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
    /// type → test name → the fixed-rate latency runs after its levels (`--latency-rates`), in
    /// the order of the rates. Kept apart from `rawData`, whose entries TFB-era scripts read as
    /// levels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fixed_rate: BTreeMap<String, BTreeMap<String, Vec<FixedRateEntry>>>,
}

/// One run at a fixed request rate, a fraction of the type's measured peak, by a load generator
/// that corrects for coordinated omission: each request's latency counts from when it was due to
/// be sent, so a server that stalls is charged for the requests it kept waiting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedRateEntry {
    /// The fraction of the peak asked for (0.5: half of the best requests/s of the levels).
    pub fraction: f64,
    /// Requests/s asked for.
    pub target_rate: f64,
    pub connections: u32,
    /// Rows per request, for the `queries`-style types (the headline level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queries: Option<u32>,
    pub duration_seconds: u32,
    pub start_time: u64,
    pub end_time: u64,
    pub total_requests: u64,
    /// Requests/s completed: below the target when the server could not keep up.
    pub achieved_rate: f64,
    /// Requests that failed or were answered with a status other than 2xx.
    pub errors: u64,
    pub latency_ms: CorrectedLatencyMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_seconds: Option<f64>,
    /// Set when the load generator produced no result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Latency corrected for coordinated omission, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CorrectedLatencyMs {
    pub avg: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
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

    /// Socket errors and 5xx answers of this level, TFB's error count.
    pub fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.non_2xx
    }
}

impl Results {
    /// An empty run, named after its start, measured with `profile` on `environment`.
    pub fn new(name: String, start_time: u64, environment: Environment, profile: &Profile) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            name,
            start_time,
            end_time: start_time,
            environment,
            concurrency_levels: profile.concurrency_levels.clone(),
            pipeline_concurrency_levels: profile.pipeline_concurrency_levels.clone(),
            query_intervals: profile.query_levels.clone(),
            cached_query_intervals: profile.cached_query_levels.clone(),
            duration: profile.duration_seconds,
            profile: profile.clone(),
            verify: BTreeMap::new(),
            verification: BTreeMap::new(),
            raw_data: BTreeMap::new(),
            skipped: BTreeMap::new(),
            succeeded: BTreeMap::new(),
            failed: BTreeMap::new(),
            runner_cpu_seconds: 0.0,
            fixed_rate: BTreeMap::new(),
        }
    }

    /// Writes `results.json` (the reports beside it are [`crate::output`]'s).
    pub fn write_json(&self, directory: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(directory)?;
        fs::write(
            directory.join("results.json"),
            serde_json::to_string_pretty(self)?,
        )?;
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

    /// Records TFB's verdict on `test`'s `test_type`.
    pub fn record_verdict(&mut self, test: &str, test_type: TestType, verdict: Level) {
        self.verify
            .entry(test.to_owned())
            .or_default()
            .insert(test_type.to_string(), verdict);
    }

    /// Records the levels `test`'s `test_type` was loaded at: it succeeded when one level
    /// measured something.
    pub fn record_load(&mut self, test: &str, test_type: TestType, entries: Vec<Entry>) {
        let outcome = if entries.iter().any(|entry| entry.error.is_none()) {
            &mut self.succeeded
        } else {
            &mut self.failed
        };
        outcome
            .entry(test_type.to_string())
            .or_default()
            .push(test.to_owned());
        self.raw_data
            .entry(test_type.to_string())
            .or_default()
            .insert(test.to_owned(), entries);
    }

    /// Records the fixed-rate latency runs of `test`'s `test_type`.
    pub fn record_fixed_rate(
        &mut self,
        test: &str,
        test_type: TestType,
        entries: Vec<FixedRateEntry>,
    ) {
        if entries.is_empty() {
            return;
        }
        self.fixed_rate
            .entry(test_type.to_string())
            .or_default()
            .insert(test.to_owned(), entries);
    }

    /// The run's name for people: the user's label with the run's timestamp, or the timestamp.
    pub fn title(&self) -> String {
        match &self.environment.label {
            Some(label) => format!("{label} ({})", self.name),
            None => self.name.clone(),
        }
    }

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
