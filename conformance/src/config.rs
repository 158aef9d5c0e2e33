//! `benchmark_config.json` in TFB's format, typed: the one model of it that the verifier, the
//! harness, the runner and the tests all read (keys the tools do not use are kept as-is).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::TestType;

#[derive(Debug, Clone, Deserialize)]
pub struct BenchmarkConfig {
    pub framework: String,
    pub tests: Vec<BTreeMap<String, TestConfig>>,
}

impl BenchmarkConfig {
    /// Reads and parses a `benchmark_config.json`; every configured path must start with `/`,
    /// as TFB requires.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for (key, test) in config.tests() {
            for (test_type, url) in test.paths() {
                if !url.starts_with('/') {
                    bail!(
                        "{}: test {key:?}: {} must start with /",
                        path.display(),
                        test_type.config_key()
                    );
                }
            }
        }
        Ok(config)
    }

    /// Every test of the file, by key, in file order.
    pub fn tests(&self) -> impl Iterator<Item = (&String, &TestConfig)> {
        self.tests.iter().flat_map(|group| group.iter())
    }

    /// TFB's name for the test with this key: `framework` for `default`, `framework-key` for
    /// the others.
    pub fn test_name(&self, key: &str) -> String {
        if key == "default" {
            self.framework.clone()
        } else {
            format!("{}-{key}", self.framework)
        }
    }

    /// The test with this key (`default`, `pool`, ...).
    pub fn test(&self, key: &str) -> Option<&TestConfig> {
        self.tests()
            .find(|(name, _)| *name == key)
            .map(|(_, test)| test)
    }
}

/// One test of the file: a path per test type it serves, and TFB's other settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TestConfig {
    pub json_url: Option<String>,
    pub db_url: Option<String>,
    pub query_url: Option<String>,
    pub fortune_url: Option<String>,
    pub update_url: Option<String>,
    pub plaintext_url: Option<String>,
    pub cached_query_url: Option<String>,
    pub port: Option<u16>,
    pub dockerfile: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl TestConfig {
    /// The configured path of one type, e.g. `/queries?queries=` for [`TestType::Query`].
    pub fn path(&self, test_type: TestType) -> Option<&str> {
        match test_type {
            TestType::Db => &self.db_url,
            TestType::Json => &self.json_url,
            TestType::Query => &self.query_url,
            TestType::Update => &self.update_url,
            TestType::Fortune => &self.fortune_url,
            TestType::Plaintext => &self.plaintext_url,
            TestType::CachedQuery => &self.cached_query_url,
        }
        .as_deref()
    }

    /// The configured types and their paths, in TFB's run order (by the length of the type's
    /// name).
    pub fn paths(&self) -> Vec<(TestType, &str)> {
        TestType::ALL
            .into_iter()
            .filter_map(|test_type| Some((test_type, self.path(test_type)?)))
            .collect()
    }

    /// Whether the test serves this type.
    pub fn serves(&self, test_type: TestType) -> bool {
        self.path(test_type).is_some()
    }

    /// The path TFB waits on before verifying: the first in its run order.
    pub fn ready_path(&self) -> &str {
        self.paths().first().map_or("/", |(_, path)| *path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn paths_come_in_tfb_run_order_with_their_types() {
        let file = write(
            r#"{"framework": "x", "tests": [{"default": {"plaintext_url": "/plaintext",
                "db_url": "/db", "cached_query_url": "/c?count=", "approach": "Realistic"}}]}"#,
        );
        let config = BenchmarkConfig::read(file.path()).unwrap();
        let test = config.test("default").unwrap();
        assert_eq!(
            test.paths(),
            [
                (TestType::Db, "/db"),
                (TestType::Plaintext, "/plaintext"),
                (TestType::CachedQuery, "/c?count=")
            ]
        );
        assert_eq!(test.ready_path(), "/db");
        assert!(!test.serves(TestType::Json));
        assert_eq!(test.other["approach"], "Realistic");
        assert!(config.test("pool").is_none());
    }

    #[test]
    fn a_path_without_its_leading_slash_is_refused() {
        let file = write(r#"{"framework": "x", "tests": [{"pool": {"json_url": "json"}}]}"#);
        let error = BenchmarkConfig::read(file.path()).unwrap_err();
        assert!(
            format!("{error:#}").contains("test \"pool\": json_url must start with /"),
            "{error:#}"
        );
    }
}
