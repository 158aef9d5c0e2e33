//! The validated plan of a `verify` or `benchmark`: which tests and types, where their servers
//! come from, which database, and for a benchmark the load profile (the chosen profile with the
//! command line's overrides) and where results go. Everything that can be refused from the
//! arguments alone is refused here, before anything is built or started.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use conformance::{BenchmarkConfig, TestConfig, TestType};
use tfb_harness::{build::BuildSettings, discover, workspace_root};

use crate::{
    cli::{BenchmarkArgs, Selection},
    load,
    profile::Profile,
};

/// One test of a `benchmark_config.json`: an implementation's, or the file given with `--config`.
#[derive(Debug, Clone)]
pub struct SelectedTest {
    /// The Cargo package that builds the server; `None` for a test from `--config`, whose server
    /// someone else runs (client mode only).
    pub package: Option<String>,
    /// TFB's name: `axum`, `axum-pool`.
    pub name: String,
    pub config: TestConfig,
}

/// Where the servers under test come from.
pub enum Servers {
    /// Built here with these settings and started one at a time.
    Build { settings: BuildSettings },
    /// Client mode: one server someone else runs, waited for up to `patience`.
    Remote { url: String, patience: Duration },
}

pub struct Plan {
    pub tests: Vec<SelectedTest>,
    /// The types asked for; each test runs those of them it configures.
    pub types: Vec<TestType>,
    pub servers: Servers,
    /// A database to use instead of starting a throwaway one.
    pub database_url: Option<String>,
    pub quiet: bool,
}

impl Plan {
    pub fn new(selection: &Selection) -> anyhow::Result<Self> {
        let tests = match &selection.config {
            Some(path) => select_outside(path, &selection.tests)?,
            None => select(&selection.tests)?,
        };
        let servers = match &selection.server_url {
            Some(url) => {
                if tests.len() != 1 {
                    let known: Vec<&str> = tests.iter().map(|test| test.name.as_str()).collect();
                    bail!(
                        "with --server-url, select exactly one test with --test (it names the paths to use); the tests are: {}",
                        known.join(", ")
                    );
                }
                Servers::Remote {
                    url: url.clone(),
                    patience: Duration::from_secs(selection.wait_for_server),
                }
            }
            None => Servers::Build {
                settings: BuildSettings {
                    profile: selection.build_profile.clone(),
                    target_cpu: selection.target_cpu.clone(),
                },
            },
        };
        Ok(Self {
            tests,
            types: if selection.types.is_empty() {
                TestType::ALL.to_vec()
            } else {
                selection.types.clone()
            },
            servers,
            database_url: selection.database_url.clone(),
            quiet: selection.quiet,
        })
    }

    /// The types this run takes of `test`, with their paths, in TFB's run order.
    pub fn paths_of<'a>(&self, test: &'a SelectedTest) -> Vec<(TestType, &'a str)> {
        test.config
            .paths()
            .into_iter()
            .filter(|(test_type, _)| self.types.contains(test_type))
            .collect()
    }
}

pub struct BenchmarkPlan {
    pub plan: Plan,
    pub profile: Profile,
    pub results_dir: PathBuf,
    /// `--label`: the environment's name in reports and comparisons.
    pub label: Option<String>,
}

impl BenchmarkPlan {
    pub fn new(arguments: &BenchmarkArgs) -> anyhow::Result<Self> {
        let profile = profile(arguments);
        check_writable(&arguments.results_dir)?;
        if !profile.latency_rates.is_empty() {
            crate::oha::check_installed()?;
        }
        Ok(Self {
            plan: Plan::new(&arguments.selection)?,
            profile,
            results_dir: arguments.results_dir.clone(),
            label: arguments.label.clone(),
        })
    }

    /// Seconds the whole load takes, for the progress bar.
    pub fn planned_seconds(&self) -> u64 {
        self.plan
            .tests
            .iter()
            .flat_map(|test| self.plan.paths_of(test))
            .map(|(test_type, _)| load::planned_seconds(&self.profile, test_type))
            .sum()
    }
}

/// The tests named in `names` (all of them when empty), in discovery order.
pub fn select(names: &[String]) -> anyhow::Result<Vec<SelectedTest>> {
    let mut all = Vec::new();
    for implementation in discover::implementations(&workspace_root())? {
        for (key, config) in implementation.config.tests() {
            all.push(SelectedTest {
                name: implementation.test_name(key),
                config: config.clone(),
                package: Some(implementation.package.clone()),
            });
        }
    }
    named(all, names)
}

/// The tests named in `names` (all of them when empty) of the `benchmark_config.json` at `path`,
/// which may be any TFB-style server's (a TFB entry run beside ours, to compare the two), named
/// the way TFB names them: `framework` for its `default` test, `framework-key` for the others.
pub fn select_outside(path: &Path, names: &[String]) -> anyhow::Result<Vec<SelectedTest>> {
    let config = BenchmarkConfig::read(path)?;
    let all = config
        .tests()
        .map(|(key, test)| SelectedTest {
            name: config.test_name(key),
            config: test.clone(),
            package: None,
        })
        .collect();
    named(all, names)
}

fn named(all: Vec<SelectedTest>, names: &[String]) -> anyhow::Result<Vec<SelectedTest>> {
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

/// The named profile with the command line's overrides.
fn profile(arguments: &BenchmarkArgs) -> Profile {
    let mut profile = Profile::named(arguments.profile);
    if let Some(duration) = arguments.duration {
        profile.duration_seconds = duration;
    }
    if let Some(warmup) = arguments.warmup {
        profile.primer_seconds = warmup;
        profile.warmup_seconds = warmup;
    }
    let overrides = [
        (
            &arguments.concurrency_levels,
            &mut profile.concurrency_levels,
        ),
        (
            &arguments.pipeline_concurrency_levels,
            &mut profile.pipeline_concurrency_levels,
        ),
        (&arguments.query_levels, &mut profile.query_levels),
        (
            &arguments.cached_query_levels,
            &mut profile.cached_query_levels,
        ),
    ];
    for (given, levels) in overrides {
        if !given.is_empty() {
            levels.clone_from(given);
        }
    }
    if let Some(connections) = arguments.query_concurrency {
        profile.query_concurrency = connections;
    }
    profile.repeat = arguments.repeat.max(1);
    if let Some(rates) = &arguments.latency_rates {
        profile.latency_rates.clone_from(&rates.0);
    }
    profile
}

/// Fails before the build, not after an hour of it, when results cannot be written.
fn check_writable(results_dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(results_dir)
        .with_context(|| format!("--results-dir {}: cannot create it", results_dir.display()))?;
    let probe = results_dir.join(format!(".tfb-write-check-{}", std::process::id()));
    fs::write(&probe, b"").with_context(|| {
        format!(
            "--results-dir {}: cannot write into it",
            results_dir.display()
        )
    })?;
    let _ = fs::remove_file(&probe);
    Ok(())
}
