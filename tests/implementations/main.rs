//! End-to-end tests of every implementation under `implementations/`, found by its
//! `benchmark_config.json`: each is built (profile `ci` unless `TFB_TEST_PROFILE` says otherwise),
//! started against one real PostgreSQL (a throwaway cluster, or `DATABASE_URL`), and checked over
//! real sockets: bodies, headers, query edge cases, the exact fortunes page, stored updates,
//! pipelining, bad input, a database restart, and a graceful stop.
//!
//! Each check is its own test, named `<test name>::<check>` (`axum::query::edge_cases`,
//! `actix-pool::update::rows_are_stored`), so `cargo test -p tfb-tests -- axum::` runs one.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex, OnceLock},
    thread,
    time::{Duration, Instant},
};

mod assertions;
mod database;
mod http_behaviour;
mod process;
mod test_types;

use assertions::{
    CheckResult, ContentKind, check_success, check_world, parse_json, parse_world_list,
};
use conformance::{TestConfig, TestType};
use database::*;
use http_behaviour::*;
use libtest_mimic::{Arguments, Failed, Trial};
use process::*;
use serde_json::Value;
use test_types::*;
use tfb_database::{Cluster, Database};
use tfb_harness::{
    build,
    discover::{self, ContractException, Implementation},
    http::{self, Connection, Response},
    proxy::StallingProxy,
    server::ServerProcess,
    workspace_root,
};

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let implementations = match discover::implementations(&workspace_root()) {
        Ok(implementations) => implementations,
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::FAILURE;
        }
    };
    let context = Arc::new(Context::new(implementations.clone()));
    let mut trials: Vec<Trial> = assertions::self_tests::ALL
        .into_iter()
        .map(|(name, test)| {
            Trial::test(format!("assertions::{name}"), move || {
                test();
                Ok(())
            })
        })
        .collect();
    for implementation in &implementations {
        for (key, test) in implementation.config.tests() {
            let test_name = implementation.test_name(key);
            for check in CHECKS {
                if !check.applies_to(test, key) {
                    continue;
                }
                let context = Arc::clone(&context);
                let (implementation_name, key) = (implementation.name.clone(), key.clone());
                let trial = Trial::test(format!("{test_name}::{}", check.name), move || {
                    let target = context.target(&implementation_name, &key)?;
                    (check.run)(&target).map_err(Failed::from)
                });
                trials.push(
                    trial.with_ignored_flag(check.needs_throwaway_cluster && external_database()),
                );
            }
        }
    }
    let conclusion = libtest_mimic::run(&arguments, trials);
    // Stop the servers and the cluster before exiting; exit() would skip their destructors.
    drop(context);
    conclusion.exit_code()
}

fn external_database() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|url| !url.is_empty())
}

/// What a check needs: the server under test, its test's URLs, and the database behind it.
struct Target<'a> {
    implementation: &'a Implementation,
    test: &'a TestConfig,
    binary: &'a PathBuf,
    server: &'a ServerProcess,
    database_url: &'a str,
    /// Held by every check that writes World rows, so `rows_are_stored` sees only its own writes.
    world_writes: &'a Mutex<()>,
}

impl Target<'_> {
    fn address(&self) -> SocketAddr {
        self.server.address()
    }

    fn url(&self, test_type: TestType) -> &str {
        self.test
            .path(test_type)
            .expect("checks run only where their URL is configured")
    }

    fn get(&self, path: &str) -> Result<Response, String> {
        http::get(self.address(), path).map_err(|error| format!("GET {path}: {error}"))
    }

    /// Whether the implementation declares that its framework cannot meet `clause`.
    fn excepts(&self, clause: ContractException) -> bool {
        self.implementation.exceptions.contains_key(&clause)
    }
}

/// The failure of a declared exception the server no longer shows: the framework meets the
/// clause now, so the exception must go (and the clause's check applies again).
fn exception_gone(clause: ContractException, seen: &str) -> String {
    format!(
        "contract-exceptions.json declares `{}`, but {seen}: the framework meets the clause now; \
         remove the exception",
        clause.name()
    )
}

/// Built binaries, the database and one running server per implementation, made on first use
/// (so `--list` builds nothing) and shared by every check.
struct Context {
    implementations: Vec<Implementation>,
    state: OnceLock<Result<Running, String>>,
    world_writes: Mutex<()>,
}

struct Running {
    // Field order is drop order: servers stop before the database they use.
    servers: HashMap<String, ServerProcess>,
    binaries: HashMap<String, PathBuf>,
    database_url: String,
    _database: Database,
}

impl Context {
    fn new(implementations: Vec<Implementation>) -> Self {
        Self {
            implementations,
            state: OnceLock::new(),
            world_writes: Mutex::new(()),
        }
    }

    fn target(&self, implementation: &str, key: &str) -> Result<Target<'_>, String> {
        let running = self
            .state
            .get_or_init(|| self.start().map_err(|error| format!("{error:#}")))
            .as_ref()
            .map_err(Clone::clone)?;
        let implementation = self
            .implementations
            .iter()
            .find(|candidate| candidate.name == implementation)
            .expect("trials name discovered implementations");
        let test = implementation
            .config
            .tests()
            .find(|(test_key, _)| *test_key == key)
            .map(|(_, test)| test)
            .expect("trials name configured tests");
        Ok(Target {
            implementation,
            test,
            binary: &running.binaries[&implementation.package],
            server: &running.servers[&implementation.name],
            database_url: &running.database_url,
            world_writes: &self.world_writes,
        })
    }

    fn start(&self) -> anyhow::Result<Running> {
        let packages: Vec<&str> = self
            .implementations
            .iter()
            .map(|implementation| implementation.package.as_str())
            .collect();
        let binaries = build::build(&packages, &build::BuildSettings::for_tests())?;
        let database = Database::from_env()?;
        let url = database.url();
        let mut servers = HashMap::new();
        for implementation in &self.implementations {
            let binary = &binaries[&implementation.package];
            let server = ServerProcess::start(binary, &url, ready_path(implementation))?;
            servers.insert(implementation.name.clone(), server);
        }
        Ok(Running {
            servers,
            binaries,
            database_url: url,
            _database: database,
        })
    }
}

/// TFB waits on the first URL of the test in its run order.
fn ready_path(implementation: &Implementation) -> &str {
    implementation
        .config
        .tests()
        .next()
        .map_or("/", |(_, test)| test.ready_path())
}

struct Check {
    name: &'static str,
    /// What the check needs; `None` runs it once per implementation, on `default`.
    needs: Option<Needs>,
    needs_throwaway_cluster: bool,
    run: fn(&Target) -> CheckResult,
}

#[derive(Clone, Copy)]
enum Needs {
    /// Runs on every test of the config that serves this type.
    Type(TestType),
    /// Runs on every test of the config.
    EveryTest,
}

impl Check {
    fn applies_to(&self, test: &TestConfig, key: &str) -> bool {
        match self.needs {
            Some(Needs::EveryTest) => true,
            Some(Needs::Type(test_type)) => test.serves(test_type),
            None => key == "default",
        }
    }
}

const fn check(name: &'static str, needs: Option<Needs>, run: fn(&Target) -> CheckResult) -> Check {
    Check {
        name,
        needs,
        needs_throwaway_cluster: false,
        run,
    }
}

const CHECKS: &[Check] = &[
    check(
        "json::body_and_headers",
        Some(Needs::Type(TestType::Json)),
        json_body_and_headers,
    ),
    check(
        "plaintext::body_and_headers",
        Some(Needs::Type(TestType::Plaintext)),
        plaintext_body_and_headers,
    ),
    check(
        "db::body_and_headers",
        Some(Needs::Type(TestType::Db)),
        db_body_and_headers,
    ),
    check(
        "db::ids_spread_over_the_table",
        Some(Needs::Type(TestType::Db)),
        db_ids_spread,
    ),
    check(
        "query::edge_cases",
        Some(Needs::Type(TestType::Query)),
        query_edge_cases,
    ),
    check(
        "update::edge_cases",
        Some(Needs::Type(TestType::Update)),
        update_edge_cases,
    ),
    check(
        "update::rows_are_stored",
        Some(Needs::Type(TestType::Update)),
        update_rows_are_stored,
    ),
    check(
        "fortune::exact_page",
        Some(Needs::Type(TestType::Fortune)),
        fortune_exact_page,
    ),
    check(
        "cached-query::edge_cases",
        Some(Needs::Type(TestType::CachedQuery)),
        cached_query_edge_cases,
    ),
    check("http::pipelined_16_deep", None, pipelined_16_deep),
    check(
        "http::pipelined_mixed_in_order",
        None,
        pipelined_mixed_in_order,
    ),
    check("http::date_refreshes", None, date_refreshes),
    check("http::unknown_path_is_404", None, unknown_path_is_404),
    check(
        "http::wrong_method_is_rejected",
        None,
        wrong_method_is_rejected,
    ),
    check(
        "http::malformed_request_is_rejected",
        None,
        malformed_request_is_rejected,
    ),
    check(
        "http::pipelined_then_malformed",
        None,
        pipelined_then_malformed,
    ),
    check(
        "http::half_closed_client_is_answered",
        None,
        half_closed_client_is_answered,
    ),
    check(
        "http::hostile_requests_are_answered_or_refused",
        None,
        hostile_requests_are_answered_or_refused,
    ),
    check(
        "http::oversized_header_is_rejected",
        None,
        oversized_header_is_rejected,
    ),
    check(
        "http::slow_and_idle_clients_are_cut",
        None,
        slow_and_idle_clients_are_cut,
    ),
    check("process::logs_one_line_only", None, logs_one_line_only),
    check(
        "contract::exceptions_are_documented",
        None,
        exceptions_are_documented,
    ),
    check(
        "process::refuses_a_port_in_use",
        None,
        refuses_a_port_in_use,
    ),
    check(
        "process::descriptor_limit_is_survived",
        None,
        descriptor_limit_is_survived,
    ),
    Check {
        name: "process::sigterm_drains_and_exits_zero",
        needs: None,
        needs_throwaway_cluster: true,
        run: sigterm_drains_and_exits_zero,
    },
    Check {
        name: "conformance::tfb_verification",
        needs: Some(Needs::EveryTest),
        needs_throwaway_cluster: true,
        run: tfb_verification,
    },
    Check {
        name: "database::statement_counts",
        needs: Some(Needs::Type(TestType::Db)),
        needs_throwaway_cluster: true,
        run: statement_counts,
    },
    Check {
        name: "database::restart_is_survived",
        needs: None,
        needs_throwaway_cluster: true,
        run: database_restart_is_survived,
    },
    Check {
        name: "database::stall_is_answered_and_survived",
        needs: None,
        needs_throwaway_cluster: true,
        run: database_stall_is_survived,
    },
    Check {
        name: "database::locked_table_holds_only_updates",
        needs: None,
        needs_throwaway_cluster: true,
        run: locked_table_holds_only_updates,
    },
];
