//! Finding the system's PostgreSQL server binaries.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// The folder holding `initdb`, `postgres`, `psql` and `pg_isready`, and the server's version.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bin_dir: PathBuf,
    pub major_version: u32,
}

const REQUIRED: [&str; 4] = ["initdb", "postgres", "psql", "pg_isready"];

impl PgBinaries {
    /// Looks in `PG_BINDIR` if set, then `pg_config --bindir`, then the newest
    /// `/usr/lib/postgresql/*/bin`, then `PATH`.
    pub fn find() -> anyhow::Result<Self> {
        let candidates: Vec<PathBuf> = std::env::var_os("PG_BINDIR")
            .map(PathBuf::from)
            .into_iter()
            .chain(pg_config_bindir())
            .chain(debian_bindirs())
            .chain(path_dir_of("initdb"))
            .collect();
        let Some(bin_dir) = candidates.iter().find(|dir| has_server_binaries(dir)) else {
            bail!(
                "PostgreSQL server binaries ({}) were not found in {}.\n\
                 Install them with `apt-get install -y postgresql` (Debian/Ubuntu; or run \
                 scripts/install-deps.sh), set PG_BINDIR to the folder that holds them, or set \
                 DATABASE_URL to a server loaded with db-schema/create-database.sql.",
                REQUIRED.join(", "),
                describe(&candidates)
            );
        };
        let major_version = major_version(bin_dir)?;
        Ok(Self {
            bin_dir: bin_dir.clone(),
            major_version,
        })
    }

    pub fn path(&self, program: &str) -> PathBuf {
        self.bin_dir.join(program)
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    REQUIRED.iter().all(|program| dir.join(program).is_file())
}

fn pg_config_bindir() -> Option<PathBuf> {
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    output
        .status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Debian installs each major version side by side; the newest one wins.
fn debian_bindirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn path_dir_of(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).find(|dir| dir.join(program).is_file())
}

fn describe(candidates: &[PathBuf]) -> String {
    if candidates.is_empty() {
        return "PG_BINDIR, pg_config, /usr/lib/postgresql/*/bin or PATH".to_owned();
    }
    let dirs: Vec<String> = candidates
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    dirs.join(", ")
}

/// Parses `postgres (PostgreSQL) 15.18 (Debian ...)`.
fn major_version(bin_dir: &Path) -> anyhow::Result<u32> {
    let output = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .with_context(|| format!("running {}/postgres --version", bin_dir.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .find_map(|word| word.split('.').next()?.parse().ok())
        .with_context(|| format!("no version in `postgres --version` output {text:?}"))
}
