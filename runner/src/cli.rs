//! The command line: what `tfb` accepts, as clap types. Nothing here checks more than clap can;
//! [`crate::plan`] turns these arguments into a validated plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use conformance::TestType;

use crate::profile::ProfileName;

#[derive(Parser)]
#[command(
    version,
    about = "Verify and benchmark web frameworks the TechEmpower way"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// `json` prints machine-readable output on stdout (reports, results) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// The discovered implementations, their tests and test types.
    List,
    /// Verify the selected tests (TFB's verification plus our strict checks).
    Verify(Selection),
    /// Verify, then load every type that did not fail, and write the results.
    Benchmark(BenchmarkArgs),
    /// Compare runs: per type, test and level, the change in requests/s from the first run to
    /// each later one, called a change only when it exceeds the spread.
    /// Also writes compare.md and compare.html: the runs' environments side by side and each
    /// type's headline in every run (one run per machine or cloud, or before and after a change).
    Compare {
        /// Run folders; the first is the baseline.
        #[arg(num_args = 2.., required = true)]
        runs: Vec<PathBuf>,
        /// Where compare.md and compare.html go; default: compare-<timestamp> beside the first run.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Scaffold implementations/NAME from an existing implementation: its folder with the
    /// package renamed, benchmark_config.json under NAME, its Dockerfile and Kubernetes overlay,
    /// the workspace member and Cargo.lock. It builds and passes the suite as it is; then rewrite
    /// the framework glue for NAME.
    New {
        /// The new implementation's folder and framework name (lowercase, e.g. xitca-web); its
        /// package is tfb-NAME.
        name: String,
        /// The implementation to start from: a folder under implementations/ (see `tfb list`).
        #[arg(long)]
        from: String,
    },
    /// Write summary.md and report.html again from a run's results.json.
    Report {
        /// A run's folder, e.g. results/20261126-170747.
        directory: PathBuf,
    },
}

#[derive(Args)]
pub struct Selection {
    /// Tests by TFB name (comma-separated: axum,actix-pool); default: all.
    #[arg(long = "test", value_delimiter = ',')]
    pub tests: Vec<String>,
    /// Test types (comma-separated); default: every type the test configures.
    #[arg(long = "type", value_delimiter = ',', value_enum)]
    pub types: Vec<TestType>,
    /// Use this database instead of starting a throwaway one (also read from DATABASE_URL).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Client mode: verify and load a server that runs elsewhere; nothing is built or started.
    /// Select exactly one test, whose benchmark_config.json gives the paths.
    #[arg(long)]
    pub server_url: Option<String>,
    /// Client mode: wait up to this many seconds for the server to accept connections, for
    /// containers started together (Compose, a Kubernetes Job); 0 fails at once.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub wait_for_server: u64,
    /// Client mode: take the tests from this `benchmark_config.json` instead of those under
    /// implementations/, to verify and load any TFB-style server (a TFB entry beside ours, to
    /// put both in `tfb compare`). Tests are named as TFB names them: the framework for
    /// `default`, framework-key for the others.
    #[arg(long, value_name = "FILE", requires = "server_url")]
    pub config: Option<PathBuf>,
    /// The cargo profile the servers are built with; benchmarks should keep `release`.
    #[arg(long, default_value = "release")]
    pub build_profile: String,
    /// The CPU the servers are compiled for (rustc's `-C target-cpu`): `native`, this machine's
    /// own, as TFB's Dockerfiles and ours build; a name like `x86-64-v3` for a binary that runs
    /// on other machines. Recorded in results.json.
    #[arg(long, env = "TFB_TARGET_CPU", default_value = tfb_harness::build::DEFAULT_TARGET_CPU)]
    pub target_cpu: String,
    /// Print less: no progress lines.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct BenchmarkArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// `quick` (minutes on a laptop) or `tfb` (TFB's exact load phase).
    #[arg(long, value_enum, default_value_t = ProfileName::Quick)]
    pub profile: ProfileName,
    /// Seconds per level (overrides the profile).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub duration: Option<u32>,
    /// Connections for json, db and fortune (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency_levels: Vec<u32>,
    /// Connections for pipelined plaintext (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub pipeline_concurrency_levels: Vec<u32>,
    /// Rows per request for query and update (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub query_levels: Vec<u32>,
    /// Rows per request for cached-query (overrides the profile).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub cached_query_levels: Vec<u32>,
    /// Connections for query, update and cached-query (overrides the profile).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub query_concurrency: Option<u32>,
    /// Seconds of primer and of warmup (overrides the profile).
    #[arg(long)]
    pub warmup: Option<u32>,
    /// Fixed-rate latency after each type's levels (not plaintext): fractions of its headline
    /// requests/s, comma-separated (`0.25,0.5,0.75`, the tfb profile's), or `off` (the quick
    /// profile's). Needs oha (scripts/install-deps.sh installs it).
    #[arg(long, value_parser = latency_rates, value_name = "FRACTIONS")]
    pub latency_rates: Option<LatencyRates>,
    /// Measure every level this many times; results keep the median and every run's figure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Where results/<timestamp>/ goes.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// A name for the environment measured (e.g. "aws m5.xlarge"), heading this run's column
    /// in `tfb compare` and the report's title.
    #[arg(long, value_parser = non_blank)]
    pub label: Option<String>,
}

/// `--latency-rates`: fractions of a type's peak, or none.
#[derive(Debug, Clone)]
pub struct LatencyRates(pub Vec<f64>);

fn latency_rates(text: &str) -> Result<LatencyRates, String> {
    if text.trim() == "off" {
        return Ok(LatencyRates(Vec::new()));
    }
    text.split(',')
        .map(|fraction| match fraction.trim().parse::<f64>() {
            Ok(value) if value > 0.0 && value <= 1.0 => Ok(value),
            _ => Err(format!(
                "{fraction:?} is not a fraction of the peak above 0 and at most 1 (e.g. 0.5), \
                 and the whole is not `off`"
            )),
        })
        .collect::<Result<_, _>>()
        .map(LatencyRates)
}

/// A label must say something: blank ones would head a column with nothing.
fn non_blank(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be blank".to_owned());
    }
    Ok(text.to_owned())
}
