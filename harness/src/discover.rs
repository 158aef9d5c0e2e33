//! Finding implementations: every folder under `implementations/` with a `benchmark_config.json`
//! is one, so adding a folder adds it to every test without editing test code. The file itself
//! is read by conformance's typed model ([`conformance::config`]).

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use conformance::BenchmarkConfig;
use serde::Deserialize;

/// One implementation: a binary crate and the tests its `benchmark_config.json` declares.
#[derive(Debug, Clone)]
pub struct Implementation {
    /// The folder name under `implementations/`.
    pub name: String,
    pub dir: PathBuf,
    /// The Cargo package (and binary) name.
    pub package: String,
    pub config: BenchmarkConfig,
    /// The contract clauses the framework cannot meet, with the reason for each, from the
    /// folder's `contract-exceptions.json` (none when it has no such file).
    pub exceptions: BTreeMap<ContractException, String>,
}

impl Implementation {
    /// TFB's test name: `framework` for the `default` test, `framework-key` for the others.
    pub fn test_name(&self, key: &str) -> String {
        self.config.test_name(key)
    }
}

/// A clause of the implementation contract (implementations/README.md) that a framework cannot
/// meet from its glue. An implementation declares it, with the reason, in its
/// `contract-exceptions.json`; the end-to-end tests then assert what the framework does instead,
/// so a release of the framework that meets the clause fails them until the exception goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContractException {
    /// Request heads of any size are read (and answered).
    RequestHeadLimit,
    /// A malformed request drops the answers to the valid ones before it on the connection.
    AnsweredBeforeMalformed,
    /// A client that half-closes after its request gets no answer.
    HalfClose,
    /// Something is printed for each malformed request.
    OneLineOnly,
    /// Idle and slow clients are never cut.
    ClientHeadTimeout,
    /// A failed accept is retried at once: out of descriptors, a core spins.
    AcceptBackoff,
    /// Connections are never closed by the server: not after `Connection: close`, nor after
    /// a refusal (400, 413).
    ConnectionClose,
    /// SIGTERM exits at once: no drain, requests in flight are dropped.
    GracefulStop,
}

impl ContractException {
    /// The name `contract-exceptions.json` and the `notes` use.
    pub fn name(self) -> &'static str {
        match self {
            ContractException::RequestHeadLimit => "request-head-limit",
            ContractException::AnsweredBeforeMalformed => "answered-before-malformed",
            ContractException::HalfClose => "half-close",
            ContractException::OneLineOnly => "one-line-only",
            ContractException::ClientHeadTimeout => "client-head-timeout",
            ContractException::AcceptBackoff => "accept-backoff",
            ContractException::ConnectionClose => "connection-close",
            ContractException::GracefulStop => "graceful-stop",
        }
    }
}

/// `contract-exceptions.json`: which framework release the exceptions were observed on, and
/// each exception with its reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractExceptions {
    #[allow(
        dead_code,
        reason = "documentation for people; the tests read only the clauses"
    )]
    framework: String,
    exceptions: BTreeMap<ContractException, String>,
}

/// Every implementation under `<root>/implementations`, sorted by name.
pub fn implementations(root: &Path) -> anyhow::Result<Vec<Implementation>> {
    let mut found = Vec::new();
    let folder = root.join("implementations");
    for entry in fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
        let dir = entry?.path();
        let config_path = dir.join("benchmark_config.json");
        if !config_path.is_file() {
            continue;
        }
        let config = BenchmarkConfig::read(&config_path)?;
        let package = package_name(&dir)?;
        let name = dir
            .file_name()
            .and_then(|name| name.to_str())
            .context("implementation folder name is not UTF-8")?
            .to_owned();
        let exceptions_path = dir.join("contract-exceptions.json");
        let exceptions = if exceptions_path.is_file() {
            serde_json::from_str::<ContractExceptions>(&fs::read_to_string(&exceptions_path)?)
                .with_context(|| format!("parsing {}", exceptions_path.display()))?
                .exceptions
        } else {
            BTreeMap::new()
        };
        found.push(Implementation {
            name,
            dir,
            package,
            config,
            exceptions,
        });
    }
    if found.is_empty() {
        bail!(
            "no implementations (folders with a benchmark_config.json) under {}",
            folder.display()
        );
    }
    found.sort_by(|left, right| left.name.cmp(&right.name));
    Ok(found)
}

fn package_name(dir: &Path) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Manifest {
        package: Package,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
    }
    let path = dir.join("Cargo.toml");
    let manifest: Manifest = toml::from_str(
        &fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))?;
    Ok(manifest.package.name)
}
