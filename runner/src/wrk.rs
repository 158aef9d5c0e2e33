//! wrk: the command line TFB's scripts used, and a parser for what wrk prints.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use serde::Serialize;

/// What one wrk run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WrkOutput {
    pub total_requests: u64,
    /// The run's length as wrk reports it ("N requests in 15.00s").
    pub seconds: f64,
    pub requests_per_second: f64,
    /// TFB keeps these as wrk prints them, with their units ("1.23ms").
    pub latency_avg: String,
    pub latency_stdev: String,
    pub latency_max: String,
    /// The same in milliseconds, and the percentiles wrk's `--latency` prints.
    pub latency_avg_ms: f64,
    pub latency_max_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub socket_errors: SocketErrors,
    /// "Non-2xx or 3xx responses" (TFB stores it under the key `5xx`).
    pub non_2xx: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

/// One wrk invocation, with TFB's options: `--latency --timeout 8`, TFB's headers.
#[derive(Debug, Clone)]
pub struct WrkRun<'a> {
    pub url: &'a str,
    pub accept: &'a str,
    pub connections: u32,
    pub threads: u32,
    pub seconds: u32,
    /// Requests per batch for pipelining; 1 sends plain requests.
    pub pipeline: u32,
}

impl WrkRun<'_> {
    /// Runs wrk and returns what it printed, stdout and stderr together.
    pub fn run(&self, pipeline_script: &Path) -> anyhow::Result<String> {
        let host = self
            .url
            .trim_start_matches("http://")
            .split(['/', ':'])
            .next()
            .unwrap_or_default();
        let mut command = Command::new("wrk");
        command
            .args(["--latency", "--timeout", "8"])
            .args([
                "-t",
                &self.threads.to_string(),
                "-c",
                &self.connections.to_string(),
            ])
            .args(["-d", &format!("{}s", self.seconds)])
            .args(["-H", &format!("Host: {host}")])
            .args(["-H", &format!("Accept: {}", self.accept)])
            .args(["-H", "Connection: keep-alive"])
            .arg(self.url);
        if self.pipeline > 1 {
            command
                .arg("-s")
                .arg(pipeline_script)
                .args(["--", &self.pipeline.to_string()]);
        }
        tracing::debug!(?command, "running wrk");
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "wrk is not installed: run scripts/install-deps.sh (or `apt-get install -y wrk`)"
                ),
                _ => anyhow::Error::new(error).context("running wrk"),
            })?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok(text)
    }
}

/// Parses wrk's report. An output with no "requests in" line (wrk could not connect, or
/// refused its arguments) is an error carrying what wrk said.
pub fn parse(output: &str) -> anyhow::Result<WrkOutput> {
    let requests_line = output
        .lines()
        .find(|line| line.contains(" requests in "))
        .with_context(|| format!("wrk reported no requests: {}", output.trim()))?;
    let mut words = requests_line.split_whitespace();
    let total_requests: u64 = words
        .next()
        .unwrap_or_default()
        .parse()
        .context("request count")?;
    let seconds = words
        .nth(2)
        .map(|duration| duration.trim_end_matches(','))
        .map(duration_ms)
        .transpose()?
        .map(|ms| ms / 1000.0)
        .context("run length")?;
    let latency_line = output
        .lines()
        .find(|line| {
            line.trim_start().starts_with("Latency ") && line.split_whitespace().count() == 5
        })
        .context("no Latency line in wrk's output")?;
    let latency: Vec<&str> = latency_line.split_whitespace().skip(1).take(3).collect();
    let percentile = |label: &str| -> anyhow::Result<f64> {
        let line = output
            .lines()
            .find(|line| line.split_whitespace().next() == Some(label))
            .with_context(|| {
                format!("no {label} latency in wrk's output (was --latency given?)")
            })?;
        duration_ms(line.split_whitespace().nth(1).unwrap_or_default())
    };
    let requests_per_second = output
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .context("no Requests/sec line")?
        .trim()
        .parse()
        .context("requests per second")?;
    let mut socket_errors = SocketErrors::default();
    if let Some(line) = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
    {
        for part in line.split(',') {
            let mut pair = part.split_whitespace();
            let (Some(kind), Some(count)) = (pair.next(), pair.next()) else {
                continue;
            };
            let count = count.parse().unwrap_or(0);
            match kind {
                "connect" => socket_errors.connect = count,
                "read" => socket_errors.read = count,
                "write" => socket_errors.write = count,
                "timeout" => socket_errors.timeout = count,
                _ => {}
            }
        }
    }
    let non_2xx = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map(|count| count.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    Ok(WrkOutput {
        total_requests,
        seconds,
        requests_per_second,
        latency_avg: latency[0].to_owned(),
        latency_stdev: latency[1].to_owned(),
        latency_max: latency[2].to_owned(),
        latency_avg_ms: duration_ms(latency[0])?,
        latency_max_ms: duration_ms(latency[2])?,
        p50_ms: percentile("50%")?,
        p75_ms: percentile("75%")?,
        p90_ms: percentile("90%")?,
        p99_ms: percentile("99%")?,
        socket_errors,
        non_2xx,
    })
}

/// A wrk duration ("92.00us", "1.46ms", "1.61s", "2.00m", "1.00h") in milliseconds.
pub fn duration_ms(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|character: char| character.is_ascii_alphabetic())
        .with_context(|| format!("duration {text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("duration {text:?}"))?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("duration {text:?} has an unknown unit"),
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/wrk/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn milliseconds_and_microseconds() {
        let json = parse(&fixture("json-ms.txt")).unwrap();
        assert_eq!(json.total_requests, 336_887);
        assert!((json.seconds - 2.03).abs() < 1e-9);
        assert_eq!(
            (json.latency_avg.as_str(), json.latency_max.as_str()),
            ("1.46ms", "12.46ms")
        );
        assert!((json.p50_ms - 0.092).abs() < 1e-9 && (json.p99_ms - 7.93).abs() < 1e-9);
        assert!((json.requests_per_second - 166_012.91).abs() < 1e-6);
        assert_eq!(
            (json.socket_errors, json.non_2xx),
            (SocketErrors::default(), 0)
        );
        let single = parse(&fixture("plaintext-us.txt")).unwrap();
        assert!((single.latency_avg_ms - 0.07277).abs() < 1e-9);
        assert!((single.latency_max_ms - 4.2).abs() < 1e-9);
    }

    #[test]
    fn seconds_non_2xx_and_pipelining() {
        let slow = parse(&fixture("updates-seconds.txt")).unwrap();
        assert!((slow.latency_avg_ms - 1710.0).abs() < 1e-6 && (slow.p99_ms - 2410.0).abs() < 1e-6);
        assert_eq!(slow.total_requests, 512);
        assert_eq!(parse(&fixture("non2xx.txt")).unwrap().non_2xx, 326_937);
        assert_eq!(
            parse(&fixture("pipelined.txt")).unwrap().total_requests,
            1_505_456
        );
    }

    #[test]
    fn socket_errors_and_failures() {
        let timeouts = parse(&fixture("timeouts.txt")).unwrap();
        assert_eq!(
            timeouts.socket_errors,
            SocketErrors {
                connect: 0,
                read: 0,
                write: 0,
                timeout: 512
            }
        );
        let refused = parse(&fixture("connect-errors.txt"))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("unable to connect"), "{refused}");
        assert!(duration_ms("12").is_err() && duration_ms("3.0x").is_err());
        assert!((duration_ms("2.00m").unwrap() - 120_000.0).abs() < 1e-9);
    }
}
