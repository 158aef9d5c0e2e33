//! What a verification finds: one [`Finding`] per check result, grouped per test type into a
//! [`TypeReport`] whose verdict is TFB's, and a [`Report`] for the whole run. All of it
//! serialises to JSON.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{CheckId, TestType};

/// TFB's three levels, in increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Pass => "pass",
            Level::Warn => "warn",
            Level::Fail => "fail",
        })
    }
}

/// One result: TFB's `(level, reason, url)` tuple, or one of our stricter checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The named check it belongs to, e.g. `query::bare_url`: one test each in the suite. `None`
    /// only until [`file_under`] files it.
    #[serde(with = "crate::check::unfiled_as_empty")]
    pub check: Option<CheckId>,
    pub level: Level,
    pub message: String,
    pub url: String,
    /// A check TFB does not make. It never changes the TFB verdict, only the strict one.
    pub strict: bool,
}

impl Finding {
    pub fn new(level: Level, message: impl Into<String>, url: &str) -> Self {
        Self {
            check: None,
            level,
            message: message.into(),
            url: url.to_owned(),
            strict: false,
        }
    }

    pub fn pass(message: impl Into<String>, url: &str) -> Self {
        Self::new(Level::Pass, message, url)
    }

    pub fn warn(message: impl Into<String>, url: &str) -> Self {
        Self::new(Level::Warn, message, url)
    }

    pub fn fail(message: impl Into<String>, url: &str) -> Self {
        Self::new(Level::Fail, message, url)
    }

    /// The name of its check, empty while it is not filed under one.
    pub fn check_name(&self) -> String {
        self.check
            .map(|check| check.to_string())
            .unwrap_or_default()
    }

    /// The same result, marked as a check beyond TFB's.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }
}

/// Files findings under a named check (those not filed under one already).
pub fn file_under(check: CheckId, findings: Vec<Finding>) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut finding| {
            finding.check.get_or_insert(check);
            finding
        })
        .collect()
}

/// Every result for one test type, and the verdicts they add up to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeReport {
    pub test_type: TestType,
    pub url: String,
    /// TFB's verdict: fail if any TFB result failed, else warn if any warned, else pass.
    pub verdict: Level,
    /// The verdict including our strict checks.
    pub strict_verdict: Level,
    pub findings: Vec<Finding>,
    #[serde(with = "millis")]
    pub elapsed: Duration,
}

impl TypeReport {
    pub fn new(test_type: TestType, url: &str, findings: Vec<Finding>, elapsed: Duration) -> Self {
        let worst = |strict: bool| {
            findings
                .iter()
                .filter(|finding| strict || !finding.strict)
                .map(|finding| finding.level)
                .max()
                .unwrap_or(Level::Pass)
        };
        Self {
            test_type,
            url: url.to_owned(),
            verdict: worst(false),
            strict_verdict: worst(true),
            findings,
            elapsed,
        }
    }
}

/// A whole verification: one report per test type, in TFB's run order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub base_url: String,
    pub types: Vec<TypeReport>,
    #[serde(with = "millis")]
    pub elapsed: Duration,
    /// Of `elapsed`, the time the bursts waited for a quiet database.
    #[serde(with = "millis")]
    pub quiet_wait: Duration,
}

impl Report {
    /// TFB's verdict over all types: the worst one.
    pub fn verdict(&self) -> Level {
        self.types
            .iter()
            .map(|report| report.verdict)
            .max()
            .unwrap_or(Level::Pass)
    }

    pub fn strict_verdict(&self) -> Level {
        self.types
            .iter()
            .map(|report| report.strict_verdict)
            .max()
            .unwrap_or(Level::Pass)
    }

    pub fn get(&self, test_type: TestType) -> Option<&TypeReport> {
        self.types
            .iter()
            .find(|report| report.test_type == test_type)
    }
}

/// Durations as whole milliseconds, the way reports have always been written.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results files keep reports as JSON; reading one back must give the report that was written.
    #[test]
    fn a_report_reads_back_from_its_json() {
        let findings = vec![
            Finding::pass("ok", "http://x/db"),
            Finding::warn("slow", "http://x/db").strict(),
        ];
        let report = Report {
            base_url: "http://x".to_owned(),
            types: vec![TypeReport::new(
                TestType::Db,
                "http://x/db",
                file_under(crate::Check::Body.of(TestType::Db), findings),
                Duration::from_millis(1234),
            )],
            elapsed: Duration::from_millis(5678),
            quiet_wait: Duration::from_millis(9),
        };
        let text = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.types[0].findings, report.types[0].findings);
        assert_eq!(back.types[0].strict_verdict, Level::Warn);
        assert_eq!(back.elapsed, Duration::from_millis(5678));
    }
}
