//! Finding implementations: every folder under `implementations/` with a `benchmark_config.json`
//! is one, so adding a folder adds it to every test without editing test code.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
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
}

impl Implementation {
    /// TFB's test name: `framework` for the `default` test, `framework-key` for the others.
    pub fn test_name(&self, key: &str) -> String {
        if key == "default" {
            self.config.framework.clone()
        } else {
            format!("{}-{key}", self.config.framework)
        }
    }
}

/// `benchmark_config.json` in TFB's format (the keys the tools read; others are kept as-is).
#[derive(Debug, Clone, Deserialize)]
pub struct BenchmarkConfig {
    pub framework: String,
    pub tests: Vec<BTreeMap<String, TestConfig>>,
}

impl BenchmarkConfig {
    /// Every test of the file, by key, in file order.
    pub fn tests(&self) -> impl Iterator<Item = (&String, &TestConfig)> {
        self.tests.iter().flat_map(|group| group.iter())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct TestConfig {
    pub json_url: Option<String>,
    pub db_url: Option<String>,
    pub query_url: Option<String>,
    pub fortune_url: Option<String>,
    pub update_url: Option<String>,
    pub plaintext_url: Option<String>,
    pub port: Option<u16>,
    pub dockerfile: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl TestConfig {
    /// The configured URLs in TFB's run order (by the length of the type's name).
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        [
            ("db", &self.db_url),
            ("json", &self.json_url),
            ("query", &self.query_url),
            ("update", &self.update_url),
            ("fortune", &self.fortune_url),
            ("plaintext", &self.plaintext_url),
        ]
        .into_iter()
        .filter_map(|(kind, url)| Some((kind, url.as_deref()?)))
        .collect()
    }
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
        let config: BenchmarkConfig = serde_json::from_str(&fs::read_to_string(&config_path)?)
            .with_context(|| format!("parsing {}", config_path.display()))?;
        let package = package_name(&dir)?;
        let name = dir
            .file_name()
            .and_then(|name| name.to_str())
            .context("implementation folder name is not UTF-8")?
            .to_owned();
        found.push(Implementation {
            name,
            dir,
            package,
            config,
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
