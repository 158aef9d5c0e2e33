//! TFB's verification of a running server, as a library: [`verify`] checks every configured test
//! type the way TFB's verifier did (spec §1 and §2 of `shared/tfb-spec.md`) and returns a
//! [`Report`] with TFB's verdict per type, plus our stricter checks as separate `strict` results
//! that never change that verdict.
//!
//! It is fast because it shares TFB's waits: every type's body and header checks run at once (the
//! 3 s Date re-requests overlap), then the database bursts run one type at a time, since each one
//! counts statements server-wide and must not see another type's traffic.
//!
//! This crate never depends on the implementations' shared code: a bug there cannot hide itself.

pub mod check;
pub mod client;
pub mod config;
pub mod db_counts;
pub mod fortune;
pub mod headers;
pub mod json_checks;
pub mod report;
pub mod text;
pub mod types;

use std::{
    fmt,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

pub use check::{Check, CheckId};
pub use config::{BenchmarkConfig, TestConfig};
pub use report::{Finding, Level, Report, TypeReport};

/// The test types, in TFB's run order (by the length of their names).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TestType {
    Db,
    Json,
    Query,
    Update,
    Fortune,
    Plaintext,
    /// TFB's seventh type: `queries`-style lists of World rows from a cache filled at start-up.
    #[serde(rename = "cached-query")]
    CachedQuery,
}

impl TestType {
    pub const ALL: [TestType; 7] = [
        TestType::Db,
        TestType::Json,
        TestType::Query,
        TestType::Update,
        TestType::Fortune,
        TestType::Plaintext,
        TestType::CachedQuery,
    ];

    /// The `benchmark_config.json` key that configures it.
    pub fn config_key(self) -> &'static str {
        match self {
            TestType::Db => "db_url",
            TestType::Json => "json_url",
            TestType::Query => "query_url",
            TestType::Update => "update_url",
            TestType::Fortune => "fortune_url",
            TestType::Plaintext => "plaintext_url",
            TestType::CachedQuery => "cached_query_url",
        }
    }

    /// The named checks of this type, in the order they run; `true` marks our strict ones. Every
    /// type also has [`Check::OF_EVERY_TYPE`], which file what stops it early.
    pub fn checks(self) -> Vec<(CheckId, bool)> {
        use Check::*;
        const LIST_CASES: [(Check, bool); 5] = [
            (Case2ReturnsTwoItems, false),
            (Case0ReturnsOneItem, false),
            (CaseFooReturnsOneItem, false),
            (Case501Returns500Items, false),
            (CaseEmptyReturnsOneItem, false),
        ];
        let checks: Vec<(Check, bool)> = match self {
            TestType::Json | TestType::Plaintext => vec![
                (Body, false),
                (Status, false),
                (Headers, false),
                (ContentLength, true),
                (Pipelining, true),
            ],
            TestType::Db => vec![
                (Body, false),
                (Status, false),
                (Headers, false),
                (DatabaseCounts, false),
                (ContentLength, true),
                (IdsSpread, true),
            ],
            TestType::Query => [
                &LIST_CASES[..],
                &[(BareUrl, false), (DatabaseCounts, false)],
            ]
            .concat(),
            TestType::Update => [
                &LIST_CASES[..],
                &[
                    (RowsChanged, false),
                    (BareUrl, false),
                    (DatabaseCounts, false),
                    (ReportedRowsAreStored, true),
                ],
            ]
            .concat(),
            TestType::CachedQuery => [
                &LIST_CASES[..],
                &[(BareUrl, false), (ServedFromCache, true)],
            ]
            .concat(),
            TestType::Fortune => vec![
                (Page, false),
                (Headers, false),
                (DatabaseCounts, false),
                (Status, true),
                (ContentLength, true),
            ],
        };
        checks
            .into_iter()
            .map(|(check, strict)| (check.of(self), strict))
            .collect()
    }
}

impl fmt::Display for TestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            TestType::Db => "db",
            TestType::Json => "json",
            TestType::Query => "query",
            TestType::Update => "update",
            TestType::Fortune => "fortune",
            TestType::Plaintext => "plaintext",
            TestType::CachedQuery => "cached-query",
        })
    }
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// The configured path of each type to verify, e.g. `(Query, "/queries?queries=")`.
    pub paths: Vec<(TestType, String)>,
    /// The database the server uses, for the counts and the update check; without it those
    /// checks are skipped (and say so).
    pub database_url: Option<String>,
    /// TFB's C: concurrent requests in each database burst (TFB: 512).
    pub concurrency: usize,
    /// TFB's CI mode: a 1.5 % margin on executed queries and no failed-transaction check.
    pub ci: bool,
}

/// TFB's usual paths, as in our implementations' `benchmark_config.json`.
pub const DEFAULT_PATHS: [(TestType, &str); 7] = [
    (TestType::Db, "/db"),
    (TestType::Json, "/json"),
    (TestType::Query, "/queries?queries="),
    (TestType::Update, "/updates?queries="),
    (TestType::Fortune, "/fortunes"),
    (TestType::Plaintext, "/plaintext"),
    (TestType::CachedQuery, "/cached-queries?count="),
];

impl Target {
    /// The six types every TFB entry served, at TFB's usual paths, C = 512, not in CI mode
    /// (cached-query, which few entries served, only when asked for: [`Target::at_default_paths`]).
    pub fn new(base_url: &str, database_url: Option<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            paths: DEFAULT_PATHS
                .iter()
                .filter(|(test_type, _)| *test_type != TestType::CachedQuery)
                .map(|(test_type, path)| (*test_type, (*path).to_owned()))
                .collect(),
            database_url,
            concurrency: 512,
            ci: false,
        }
    }

    /// The paths of test `test` (`default`, or another key such as `pool`) of a
    /// `benchmark_config.json`.
    pub fn with_config(self, config: &Path, test: &str) -> anyhow::Result<Self> {
        let settings = BenchmarkConfig::read(config)?;
        let settings = settings
            .test(test)
            .with_context(|| format!("{} has no test named {test:?}", config.display()))?;
        Ok(self.with_test(settings))
    }

    /// The paths of one test of a `benchmark_config.json` already read.
    pub fn with_test(mut self, test: &TestConfig) -> Self {
        self.paths = test
            .paths()
            .into_iter()
            .map(|(test_type, path)| (test_type, path.to_owned()))
            .collect();
        self
    }

    /// Exactly these types, at TFB's usual paths.
    pub fn at_default_paths(mut self, types: &[TestType]) -> Self {
        self.paths = DEFAULT_PATHS
            .iter()
            .filter(|(test_type, _)| types.contains(test_type))
            .map(|(test_type, path)| (*test_type, (*path).to_owned()))
            .collect();
        self
    }

    /// Keeps only these types.
    pub fn only(mut self, types: &[TestType]) -> Self {
        self.paths
            .retain(|(test_type, _)| types.contains(test_type));
        self
    }
}

/// Verifies every configured type of `target`.
pub async fn verify(target: &Target) -> Report {
    let started = Instant::now();
    let phase_one = join_all(target.paths.iter().map(|(test_type, path)| async move {
        let type_started = Instant::now();
        let phase = types::phase_one(target, *test_type, path).await;
        (*test_type, path, phase, type_started.elapsed())
    }))
    .await;
    let mut reports = Vec::new();
    let mut quiet_wait = Duration::ZERO;
    for (test_type, path, mut phase, mut elapsed) in phase_one {
        let count_started = Instant::now();
        if let (Some(spec), Some(database_url)) = (&phase.counts, &target.database_url) {
            let counted = db_counts::verify_counts(database_url, spec, target.ci).await;
            quiet_wait += counted.quiet_wait;
            phase.findings.extend(report::file_under(
                Check::DatabaseCounts.of(test_type),
                counted.findings,
            ));
        } else if target.database_url.is_none()
            && matches!(
                test_type,
                TestType::Db | TestType::Query | TestType::Update | TestType::Fortune
            )
        {
            phase.findings.extend(report::file_under(
                Check::DatabaseCounts.of(test_type),
                vec![
                    Finding::warn(
                        "No database URL given: the database counts were not checked",
                        &format!("{}{path}", target.base_url),
                    )
                    .strict(),
                ],
            ));
        }
        if test_type == TestType::Update {
            phase.findings.extend(report::file_under(
                Check::ReportedRowsAreStored.of(TestType::Update),
                types::reported_rows_are_stored(target, path).await,
            ));
        }
        if test_type == TestType::CachedQuery {
            let url = format!("{}{path}", target.base_url);
            let findings = match &target.database_url {
                Some(database_url) => {
                    let checked = db_counts::served_from_cache(database_url, &url).await;
                    quiet_wait += checked.quiet_wait;
                    checked.findings
                }
                None => vec![
                    Finding::warn(
                        "No database URL given: whether the rows come from a cache was not \
                         checked",
                        &url,
                    )
                    .strict(),
                ],
            };
            phase.findings.extend(report::file_under(
                Check::ServedFromCache.of(TestType::CachedQuery),
                findings,
            ));
        }
        elapsed += count_started.elapsed();
        reports.push(TypeReport::new(
            test_type,
            &format!("{}{path}", target.base_url),
            phase.findings,
            elapsed,
        ));
    }
    reports.sort_by_key(|report| report.test_type);
    Report {
        base_url: target.base_url.clone(),
        types: reports,
        elapsed: started.elapsed(),
        quiet_wait,
    }
}
