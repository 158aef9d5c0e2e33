//! What a plan needs running before the first server starts: the built binaries, the database
//! (a throwaway cluster unless one was given), a Tokio runtime for the verifier, and the flag
//! Ctrl-C or SIGTERM sets; and, per test, starting its server and verifying it.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context;
use conformance::Report;
use tfb_database::Database;
use tfb_harness::build;

use crate::{
    plan::{Plan, SelectedTest, Servers},
    server::{self, Server},
};

pub struct Session {
    /// Package → binary, for the servers this run builds.
    binaries: BTreeMap<String, PathBuf>,
    /// The throwaway cluster, when this run started one; stopped on drop.
    database: Option<Database>,
    pub database_url: String,
    pub runtime: tokio::runtime::Runtime,
    /// Set by Ctrl-C or SIGTERM: finish the level under way, then stop.
    pub interrupted: Arc<AtomicBool>,
}

impl Session {
    pub fn start(plan: &Plan) -> anyhow::Result<Self> {
        let binaries = match &plan.servers {
            Servers::Remote { .. } => BTreeMap::new(),
            Servers::Build { settings } => build_all(&plan.tests, settings)?,
        };
        let (database, database_url) = match &plan.database_url {
            Some(url) => (None, url.clone()),
            None => {
                if !plan.quiet {
                    eprintln!("tfb: starting a throwaway PostgreSQL");
                }
                let database = Database::from_env()?;
                let url = database.url();
                (Some(database), url)
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&interrupted);
        let mut terminate = runtime.block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        })?;
        runtime.spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("tfb: stopping after the current level; results so far are kept");
            flag.store(true, Ordering::SeqCst);
        });
        Ok(Self {
            binaries,
            database,
            database_url,
            runtime,
            interrupted,
        })
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// The throwaway cluster's postmaster, whose CPU and memory the load samples.
    pub fn database_pid(&self) -> Option<u32> {
        self.database
            .as_ref()
            .and_then(Database::cluster)
            .and_then(|cluster| cluster.pid())
    }

    /// The database's `server_version`, or why it could not be read.
    pub fn postgres_version(&self) -> String {
        self.runtime
            .block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                let row = client.query_one("SHOW server_version", &[]).await?;
                Ok::<String, tokio_postgres::Error>(row.get(0))
            })
            .unwrap_or_else(|error| format!("unknown ({error})"))
    }

    /// Starts the test's server (or, in client mode, waits for it) and verifies the plan's types.
    pub fn start_and_verify(
        &self,
        plan: &Plan,
        test: &SelectedTest,
    ) -> anyhow::Result<(Server, Report)> {
        let server = match &plan.servers {
            Servers::Remote { url, patience } => {
                server::wait_for_server(url, *patience)?;
                Server::Remote(url.clone())
            }
            Servers::Build { .. } => {
                let binary = test
                    .package
                    .as_ref()
                    .and_then(|package| self.binaries.get(package))
                    .with_context(|| {
                        format!(
                            "{} has no server to build here: its config came from --config",
                            test.name
                        )
                    })?;
                Server::start(test, binary, &self.database_url)?
            }
        };
        let target = conformance::Target::new(&server.base_url(), Some(self.database_url.clone()))
            .with_test(&test.config)
            .only(&plan.types);
        let report = self.runtime.block_on(conformance::verify(&target));
        Ok((server, report))
    }
}

/// Builds the selected tests' binaries.
fn build_all(
    tests: &[SelectedTest],
    settings: &build::BuildSettings,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut packages: Vec<&str> = tests
        .iter()
        .filter_map(|test| test.package.as_deref())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    eprintln!(
        "tfb: building {} with the {} profile for target CPU {}",
        packages.join(", "),
        settings.profile,
        settings.target_cpu
    );
    Ok(build::build(&packages, settings)?.into_iter().collect())
}
