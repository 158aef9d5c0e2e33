//! oha, the fixed-rate load generator: its command line (a request rate, latency counted from
//! when each request was due, so coordinated omission is corrected) and a parser for its JSON.
//! Why oha: it is kept on crates.io, installs with cargo (which every user of this toolkit has),
//! and its `--latency-correction` is what wrk2 offered, which Debian does not package.

use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::results::CorrectedLatencyMs;

/// The program run: `TFB_OHA` when set, else `oha` on the PATH.
pub fn program() -> String {
    std::env::var("TFB_OHA").unwrap_or_else(|_| "oha".to_owned())
}

/// Fails with what to do when oha cannot be run, before anything is built.
pub fn check_installed() -> anyhow::Result<()> {
    let program = program();
    match Command::new(&program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => bail!(
            "--latency-rates needs oha, and `{program} --version` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(_) => bail!(
            "--latency-rates needs oha, which is not installed: run scripts/install-deps.sh \
             (it runs `cargo install oha`), set TFB_OHA to its path, or pass --latency-rates off"
        ),
    }
}

/// One fixed-rate run with TFB's headers.
#[derive(Debug, Clone)]
pub struct OhaRun<'a> {
    pub url: &'a str,
    pub accept: &'a str,
    pub connections: u32,
    /// Requests per second asked for.
    pub rate: f64,
    pub seconds: u32,
}

impl OhaRun<'_> {
    /// Runs oha and returns its JSON report; an error carries what it printed instead.
    pub fn run(&self) -> anyhow::Result<String> {
        let mut command = Command::new(program());
        command
            .args(["--no-tui", "--output-format", "json"])
            .args(["-z", &format!("{}s", self.seconds)])
            .args(["-c", &self.connections.to_string()])
            // At least one request per second: oha refuses a rate of 0.
            .args(["-q", &format!("{:.0}", self.rate.max(1.0))])
            .arg("--latency-correction")
            // Requests still in flight at the deadline are answered and counted, not cut.
            .arg("--wait-ongoing-requests-after-deadline")
            .args(["-t", "8s"])
            .args(["-H", &format!("Accept: {}", self.accept)])
            .arg(self.url);
        tracing::debug!(?command, "running oha");
        let output = command
            .stdin(Stdio::null())
            .output()
            .context("running oha")?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || !stdout.trim_start().starts_with('{') {
            bail!(
                "oha failed ({}): {}{}",
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(stdout)
    }
}

/// What one oha run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct OhaOutput {
    /// Requests answered or failed.
    pub total_requests: u64,
    pub requests_per_second: f64,
    /// Requests that failed, or were answered with a status other than 2xx.
    pub errors: u64,
    pub latency_ms: CorrectedLatencyMs,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    summary: Summary,
    latency_percentiles: Percentiles,
    #[serde(default)]
    status_code_distribution: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    error_distribution: std::collections::BTreeMap<String, u64>,
}

/// Seconds, as oha reports them; absent or null when nothing was answered.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    requests_per_sec: Option<f64>,
    average: Option<f64>,
    slowest: Option<f64>,
}

#[derive(Deserialize)]
struct Percentiles {
    p50: Option<f64>,
    p75: Option<f64>,
    p90: Option<f64>,
    p99: Option<f64>,
    #[serde(rename = "p99.9")]
    p999: Option<f64>,
}

/// Parses oha's JSON report. A run that answered no request is an error naming oha's errors.
pub fn parse(json: &str) -> anyhow::Result<OhaOutput> {
    let report: Report = serde_json::from_str(json).context("oha's JSON report")?;
    let answered: u64 = report.status_code_distribution.values().sum();
    let failed: u64 = report.error_distribution.values().sum();
    if answered == 0 {
        let errors: Vec<String> = report
            .error_distribution
            .iter()
            .map(|(error, count)| format!("{count}× {error}"))
            .collect();
        bail!("oha got no answer: {}", errors.join("; "));
    }
    let not_2xx: u64 = report
        .status_code_distribution
        .iter()
        .filter(|(status, _)| !status.starts_with('2'))
        .map(|(_, count)| count)
        .sum();
    let ms = |seconds: Option<f64>| seconds.unwrap_or(0.0) * 1000.0;
    let percentiles = &report.latency_percentiles;
    Ok(OhaOutput {
        total_requests: answered + failed,
        requests_per_second: report.summary.requests_per_sec.unwrap_or(0.0),
        errors: failed + not_2xx,
        latency_ms: CorrectedLatencyMs {
            avg: ms(report.summary.average),
            p50: ms(percentiles.p50),
            p75: ms(percentiles.p75),
            p90: ms(percentiles.p90),
            p99: ms(percentiles.p99),
            p999: ms(percentiles.p999),
            max: ms(report.summary.slowest),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_at_a_rate_the_server_keeps_up_with() {
        let measured = parse(include_str!("../tests/oha/db-at-2000.json")).unwrap();
        assert_eq!(measured.total_requests, 3998);
        assert_eq!(measured.errors, 0);
        assert!((measured.requests_per_second - 1997.6).abs() < 0.1);
        let latency = &measured.latency_ms;
        assert!((latency.p50 - 0.235_154).abs() < 1e-9, "{latency:?}");
        assert!((latency.p999 - 0.764_237).abs() < 1e-9, "{latency:?}");
        assert!((latency.max - 1.819_792).abs() < 1e-9, "{latency:?}");
    }

    /// Asked for far more than the server serves: the corrected latency counts the queueing
    /// (hundreds of ms) that a closed loop would not.
    #[test]
    fn an_overloaded_run_shows_the_waiting() {
        let measured = parse(include_str!("../tests/oha/db-overloaded.json")).unwrap();
        assert_eq!(measured.total_requests, 65_405);
        assert!(measured.latency_ms.p50 > 500.0, "{:?}", measured.latency_ms);
    }

    #[test]
    fn non_2xx_answers_are_errors() {
        let measured = parse(include_str!("../tests/oha/not-found.json")).unwrap();
        assert_eq!(measured.errors, measured.total_requests);
        assert!(measured.total_requests > 0);
    }

    #[test]
    fn a_run_with_no_answer_is_an_error_naming_why() {
        let error = parse(include_str!("../tests/oha/refused.json")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "oha got no answer: 100× Connection refused (os error 111)"
        );
    }
}
