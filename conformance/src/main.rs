//! `conformance`: verifies a running server the way TFB did and prints what failed, where, and
//! how to fix it. Exit code 0 when TFB would have benchmarked every type (no fail), 1 otherwise.
//!
//! ```sh
//! conformance --url http://127.0.0.1:8080 --database-url postgres://... \
//!     [--config implementations/axum/benchmark_config.json [--test pool]] [--type db,fortune] [--format json]
//! ```

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use conformance::{Level, Target, TestType, text, verify};

#[derive(Parser)]
#[command(
    version,
    about = "Verify a server the way the TechEmpower Framework Benchmarks did"
)]
struct Arguments {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The database the server uses, for the query counts and the update check.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Read the test paths from this benchmark_config.json (default: TFB's usual paths).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which test of the config file: `default` or another key.
    #[arg(long, default_value = "default", requires = "config")]
    test: String,
    /// Only these test types (comma-separated; without --config, cached-query is checked only
    /// when named here).
    #[arg(long = "type", value_delimiter = ',', value_enum)]
    types: Vec<TestType>,
    /// Concurrent requests in each database burst (TFB: 512).
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// TFB's CI margins: 1.5 % on executed queries, failed requests not counted.
    #[arg(long)]
    ci: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let arguments = Arguments::parse();
    let mut target = Target::new(&arguments.url, arguments.database_url.clone());
    target.concurrency = arguments.concurrency;
    target.ci = arguments.ci;
    if let Some(config) = &arguments.config {
        target = match target.with_config(config, &arguments.test) {
            Ok(target) => target,
            Err(error) => return usage_error(&format!("{error:#}")),
        };
    }
    if !arguments.types.is_empty() {
        target = if arguments.config.is_some() {
            target.only(&arguments.types)
        } else {
            target.at_default_paths(&arguments.types)
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage_error(&error.to_string()),
    };
    let report = runtime.block_on(verify(&target));
    match arguments.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => return usage_error(&error.to_string()),
        },
        Format::Text => print!("{}", text::render(&report)),
    }
    if report.verdict() == Level::Fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("conformance: {message}");
    ExitCode::from(2)
}
