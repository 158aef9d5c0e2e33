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

use conformance::{TestConfig, TestType};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use tfb_database::{Cluster, Database};
use tfb_harness::{
    assertions::{
        CheckResult, ContentKind, check_success, check_world, parse_json, parse_world_list,
    },
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
    let mut trials = Vec::new();
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
        let binaries = build::build(&packages, &build::test_profile())?;
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

// ---------------------------------------------------------------------------------------------
// Test types

fn json_body_and_headers(target: &Target) -> CheckResult {
    let url = target.url(TestType::Json);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)?;
    let body: Value = parse_json(&response, url)?;
    if body != serde_json::json!({"message": "Hello, World!"}) {
        return Err(format!(
            "GET {url}: expected {{\"message\":\"Hello, World!\"}}, got {}",
            response.text()
        ));
    }
    Ok(())
}

fn plaintext_body_and_headers(target: &Target) -> CheckResult {
    let url = target.url(TestType::Plaintext);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Plain)?;
    if response.body != b"Hello, World!" {
        return Err(format!(
            "GET {url}: expected exactly \"Hello, World!\", got {:?}",
            response.text()
        ));
    }
    Ok(())
}

fn db_body_and_headers(target: &Target) -> CheckResult {
    let url = target.url(TestType::Db);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)?;
    check_world(&parse_json(&response, url)?).map_err(|error| format!("GET {url}: {error}"))?;
    Ok(())
}

fn db_ids_spread(target: &Target) -> CheckResult {
    let url = target.url(TestType::Db);
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let mut ids = HashSet::new();
    for _ in 0..200 {
        let response = connection
            .get(url)
            .map_err(|error| format!("GET {url}: {error}"))?;
        ids.insert(check_world(&parse_json(&response, url)?)?.0);
    }
    // 200 uniform draws from 10000 repeat an id about twice on average; a generator that
    // repeats itself, or a narrow range, shows up as many repeats or a lopsided spread.
    let (low, high) = (
        ids.iter().filter(|&&id| id <= 5000).count(),
        ids.iter().filter(|&&id| id > 5000).count(),
    );
    if ids.len() < 185 || low < 60 || high < 60 {
        return Err(format!(
            "GET {url} 200 times gave {} distinct ids ({low} in 1..=5000, {high} above): ids are not uniform random draws",
            ids.len()
        ));
    }
    Ok(())
}

/// The `queries` values TFB tries, and ours: the value appended to the URL and the row count due.
const QUERY_CASES: &[(&str, usize)] = &[
    ("2", 2),
    ("0", 1),
    ("foo", 1),
    ("501", 500),
    ("", 1),
    ("-1", 1),
    ("99999999999999999999", 500),
    ("3&queries=7", 3),
    ("20", 20),
];

fn query_edge_cases(target: &Target) -> CheckResult {
    list_edge_cases(target, target.url(TestType::Query))
}

fn update_edge_cases(target: &Target) -> CheckResult {
    let _writes = target
        .world_writes
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    list_edge_cases(target, target.url(TestType::Update))
}

fn cached_query_edge_cases(target: &Target) -> CheckResult {
    list_edge_cases(target, target.url(TestType::CachedQuery))
}

fn list_edge_cases(target: &Target, base: &str) -> CheckResult {
    for &(value, expected) in QUERY_CASES {
        let url = format!("{base}{value}");
        let response = target.get(&url)?;
        check_success(&response, &url, ContentKind::Json)?;
        let worlds = parse_world_list(&response, &url)?;
        if worlds.len() != expected {
            return Err(format!(
                "GET {url}: expected {expected} rows, got {}",
                worlds.len()
            ));
        }
    }
    Ok(())
}

fn update_rows_are_stored(target: &Target) -> CheckResult {
    let _writes = target
        .world_writes
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let mut database = postgres::Client::connect(target.database_url, postgres::NoTls)
        .map_err(|error| format!("connecting to the database: {error}"))?;
    let snapshot = world_table(&mut database)?;
    let url = format!("{}20", target.url(TestType::Update));
    let response = target.get(&url)?;
    check_success(&response, &url, ContentKind::Json)?;
    let worlds = parse_world_list(&response, &url)?;
    let stored = world_table(&mut database)?;
    for (id, number) in &worlds {
        if stored[id] != *number {
            return Err(format!(
                "GET {url} reported row {id} = {number}, but the table holds {}",
                stored[id]
            ));
        }
        if snapshot[id] == *number {
            return Err(format!(
                "GET {url} reported row {id} = {number}, the value it already had"
            ));
        }
    }
    let reported: HashSet<i32> = worlds.iter().map(|(id, _)| *id).collect();
    let changed: Vec<i32> = stored
        .keys()
        .copied()
        .filter(|id| stored[id] != snapshot[id])
        .collect();
    if let Some(id) = changed.iter().find(|id| !reported.contains(id)) {
        return Err(format!(
            "GET {url} changed row {id}, which it did not report"
        ));
    }
    Ok(())
}

fn world_table(database: &mut postgres::Client) -> Result<HashMap<i32, i32>, String> {
    let rows = database
        .query("SELECT id, randomnumber FROM world", &[])
        .map_err(|error| format!("reading world: {error}"))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The page every implementation must serve, byte for byte (sailfish's and yarte's escaping:
/// `&lt; &gt; &quot; &#039; &amp;`). TFB's verifier accepts more spellings; we pin one.
const FORTUNES_PAGE: &str = concat!(
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>",
    "<tr><th>id</th><th>message</th></tr>",
    "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>",
    "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>",
    "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>",
    "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#039;t broken.</td></tr>",
    "<tr><td>8</td><td>A list is only as strong as its weakest link. \u{2014} Donald Knuth</td></tr>",
    "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>",
    "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>",
    "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>",
    "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>",
    "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen</td></tr>",
    "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>",
    "<tr><td>1</td><td>fortune: No such file or directory</td></tr>",
    "<tr><td>12</td><td>\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}</td></tr>",
    "</table></body></html>",
);

fn fortune_exact_page(target: &Target) -> CheckResult {
    let url = target.url(TestType::Fortune);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Html)?;
    let page = String::from_utf8(response.body.clone())
        .map_err(|_| format!("GET {url}: body is not UTF-8"))?;
    if page != FORTUNES_PAGE {
        let at = page
            .bytes()
            .zip(FORTUNES_PAGE.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        let excerpt = |text: &str| {
            text.get(at.saturating_sub(40)..(at + 60).min(text.len()))
                .unwrap_or(text)
                .to_owned()
        };
        return Err(format!(
            "GET {url}: the page differs from the expected one at byte {at}:\n  got:      …{}…\n  expected: …{}…",
            excerpt(&page),
            excerpt(FORTUNES_PAGE)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP behaviour

fn pipelined_16_deep(target: &Target) -> CheckResult {
    let url = target.url(TestType::Plaintext);
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let batch: Vec<u8> = (0..16).flat_map(|_| http::get_request(url)).collect();
    for round in 0..3 {
        connection.send(&batch).map_err(|error| error.to_string())?;
        for index in 0..16 {
            let response = connection
                .read_response()
                .map_err(|error| format!("round {round}, response {index} of 16: {error}"))?;
            check_success(&response, url, ContentKind::Plain)?;
            if response.body != b"Hello, World!" {
                return Err(format!(
                    "round {round}, response {index}: body {:?}",
                    response.text()
                ));
            }
        }
    }
    Ok(())
}

fn pipelined_mixed_in_order(target: &Target) -> CheckResult {
    let paths = [
        target.url(TestType::Json).to_owned(),
        format!("{}3", target.url(TestType::Query)),
        target.url(TestType::Plaintext).to_owned(),
        target.url(TestType::Db).to_owned(),
        target.url(TestType::Fortune).to_owned(),
        format!("{}1", target.url(TestType::Query)),
        target.url(TestType::Json).to_owned(),
    ];
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let batch: Vec<u8> = paths
        .iter()
        .flat_map(|path| http::get_request(path))
        .collect();
    connection.send(&batch).map_err(|error| error.to_string())?;
    for path in &paths {
        let response = connection
            .read_response()
            .map_err(|error| format!("{path}: {error}"))?;
        let in_order = match path {
            path if path.starts_with(target.url(TestType::Json)) => {
                response.body.starts_with(b"{\"message\"")
            }
            path if path.starts_with(target.url(TestType::Plaintext)) => {
                response.body == b"Hello, World!"
            }
            path if path.starts_with(target.url(TestType::Fortune)) => {
                response.text().starts_with("<!DOCTYPE html>")
            }
            path if path.ends_with("3") => {
                parse_world_list(&response, path).is_ok_and(|rows| rows.len() == 3)
            }
            path if path.ends_with("1") => {
                parse_world_list(&response, path).is_ok_and(|rows| rows.len() == 1)
            }
            _ => parse_json(&response, path).is_ok_and(|value| check_world(&value).is_ok()),
        };
        if !in_order {
            return Err(format!(
                "pipelined responses out of order: the answer to {path} was {:?}",
                response.text()
            ));
        }
    }
    Ok(())
}

fn date_refreshes(target: &Target) -> CheckResult {
    // Polls instead of sleeping once: a server's date timer can fire late on a
    // busy machine, and only a Date that never moves is a fault. The bound is
    // far beyond any scheduling delay, so it is no timing bet.
    const PATIENCE: Duration = Duration::from_secs(60);
    let url = target.url(TestType::Json);
    let first = target.get(url)?.header("date").map(str::to_owned);
    let Some(first) = first else {
        return Err("no Date header".into());
    };
    let started = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(200));
        match target.get(url)?.header("date") {
            Some(date) if date != first => return Ok(()),
            Some(_) if started.elapsed() < PATIENCE => {}
            other => {
                return Err(format!(
                    "Date did not change over {} s: {first:?} then {other:?}",
                    started.elapsed().as_secs()
                ));
            }
        }
    }
}

fn unknown_path_is_404(target: &Target) -> CheckResult {
    for path in ["/does-not-exist", "/jsonx", "/db/extra"] {
        let response = target.get(path)?;
        if response.status != 404 {
            return Err(format!("GET {path}: expected 404, got {}", response.status));
        }
    }
    Ok(())
}

fn wrong_method_is_rejected(target: &Target) -> CheckResult {
    let url = target.url(TestType::Json);
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let request = format!("POST {url} HTTP/1.1\r\nHost: tfb-server\r\nContent-Length: 0\r\n\r\n");
    connection
        .send(request.as_bytes())
        .map_err(|error| error.to_string())?;
    let response = connection
        .read_response()
        .map_err(|error| error.to_string())?;
    match response.status {
        404 | 405 => Ok(()),
        status => Err(format!("POST {url}: expected 405 or 404, got {status}")),
    }
}

fn malformed_request_is_rejected(target: &Target) -> CheckResult {
    let requests: [&[u8]; 3] = [
        b"THIS IS NOT HTTP\r\n\r\n",
        b"GET /json HTTP/1.1\r\nHost: tfb-server\r\nA header without a colon\r\n\r\n",
        b"GET /json HTTP/9.9\r\nHost: tfb-server\r\n\r\n",
    ];
    for request in requests {
        rejected_with_400_or_close(target, request, &[400, 505])?;
    }
    // Framing that parsers disagree on, the shapes of request smuggling: each must be refused,
    // not answered as if its body were what one reading of it says.
    let framings = [
        "Content-Length: +5",
        "Content-Length: 0x5",
        "Content-Length: 0, 32",
        "Content-Length: 5\r\nContent-Length: 6",
    ];
    for framing in framings {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: tfb-server\r\n{framing}\r\n\r\nhello",
            target.url(TestType::Json)
        );
        let refused = if target.excepts(ContractException::ConnectionClose) {
            refused_and_kept_open(target, request.as_bytes(), 400)
        } else {
            rejected_with_400_or_close(target, request.as_bytes(), &[400])
        };
        refused.map_err(|error| format!("{framing:?}: {error}"))?;
    }
    for framing in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
    ] {
        rejected_or_answered_then_closed(target, framing)
            .map_err(|error| format!("{framing:?}: {error}"))?;
    }
    still_serving(target)
}

/// Under the `connection-close` exception: `status`, then the connection stays open.
fn refused_and_kept_open(target: &Target, request: &[u8], status: u16) -> CheckResult {
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    connection
        .send(request)
        .map_err(|error| error.to_string())?;
    let response = connection
        .read_response()
        .map_err(|error| format!("no answer: {error}"))?;
    if response.status != status {
        return Err(format!("expected {status}, got {}", response.status));
    }
    // A server that closes takes microseconds; a slower close only delays noticing the fix.
    if !connection
        .still_open_after(Duration::from_secs(1))
        .map_err(|error| error.to_string())?
    {
        return Err(exception_gone(
            ContractException::ConnectionClose,
            &format!("the connection closed after the {status}"),
        ));
    }
    Ok(())
}

/// RFC 9112 §6.1: a request with both Content-Length and Transfer-Encoding is refused, or
/// answered by Transfer-Encoding alone and then the connection closes, so nothing pipelined
/// after it (where a smuggled request would be) is ever answered.
fn rejected_or_answered_then_closed(target: &Target, framing: &str) -> CheckResult {
    let json = target.url(TestType::Json);
    // An empty chunked body, 5 bytes, then a second request.
    let request = format!(
        "GET {json} HTTP/1.1\r\nHost: tfb-server\r\n{framing}\r\n\r\n0\r\n\r\n\
         GET {json} HTTP/1.1\r\nHost: tfb-server\r\n\r\n"
    );
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let _ = connection.send(request.as_bytes());
    let answer = connection.read_until_closed().map_err(|error| {
        format!("the server neither answered nor closed the connection: {error}")
    })?;
    let text = String::from_utf8_lossy(&answer);
    let responses = text.matches("HTTP/1.1 ").count();
    if text.starts_with("HTTP/1.1 400 ") || responses <= 1 {
        Ok(())
    } else {
        Err(format!(
            "{responses} responses on one connection: the request pipelined after it was answered \
             (the connection must close after such a request)"
        ))
    }
}

/// Valid requests followed in the same write by garbage: the valid ones are answered, in order,
/// before the server refuses the rest (400) or closes.
fn pipelined_then_malformed(target: &Target) -> CheckResult {
    let paths = [target.url(TestType::Plaintext), target.url(TestType::Json)];
    let mut batch: Vec<u8> = paths
        .iter()
        .flat_map(|path| http::get_request(path))
        .collect();
    batch.extend_from_slice(b"HELLO\r\n\r\n");
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    connection.send(&batch).map_err(|error| error.to_string())?;
    if target.excepts(ContractException::AnsweredBeforeMalformed) {
        closed_unanswered(
            &mut connection,
            ContractException::AnsweredBeforeMalformed,
            "the requests before the malformed one were answered",
        )?;
        return still_serving(target);
    }
    for (path, kind) in paths.iter().zip([ContentKind::Plain, ContentKind::Json]) {
        let response = connection.read_response().map_err(|error| {
            format!("GET {path} pipelined before a malformed request: no answer ({error})")
        })?;
        check_success(&response, path, kind)?;
    }
    let rest = connection.read_until_closed().map_err(|error| {
        format!("after the malformed request the server neither answered nor closed: {error}")
    })?;
    if !rest.is_empty() && !rest.starts_with(b"HTTP/1.1 400 ") {
        return Err(format!(
            "the malformed request: expected 400 or a closed connection, got {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(40)])
        ));
    }
    still_serving(target)
}

/// Under an exception whose framework drops requests with their connection: the connection
/// closes with nothing sent; an answer means the framework meets `clause` now.
fn closed_unanswered(
    connection: &mut Connection,
    clause: ContractException,
    answered: &str,
) -> CheckResult {
    let answer = connection.read_until_closed().map_err(|error| {
        format!("the server neither answered nor closed the connection: {error}")
    })?;
    if answer.is_empty() {
        Ok(())
    } else {
        Err(exception_gone(clause, answered))
    }
}

/// A client that shuts its sending side after the request (a half-close, as `nc -N` and scripts
/// do) still gets the answer, for a response made at once and for one that waits on the
/// database. The request and the end of input arrive in one segment, the case where a server
/// learns of the half-close before it has answered.
fn half_closed_client_is_answered(target: &Target) -> CheckResult {
    for (path, kind) in [
        (target.url(TestType::Plaintext), ContentKind::Plain),
        (target.url(TestType::Db), ContentKind::Json),
    ] {
        let mut connection =
            Connection::open(target.address()).map_err(|error| error.to_string())?;
        connection
            .send_and_finish(&http::get_request(path))
            .map_err(|error| error.to_string())?;
        if target.excepts(ContractException::HalfClose) {
            closed_unanswered(
                &mut connection,
                ContractException::HalfClose,
                &format!("GET {path} was answered after a half-close"),
            )?;
            continue;
        }
        let response = connection
            .read_response()
            .map_err(|error| format!("GET {path}, then a half-close: no answer ({error})"))?;
        check_success(&response, path, kind)?;
    }
    Ok(())
}

/// Requests that parsers have tripped over: each is refused (a status or a close), or answered
/// where the RFC lets a server accept it, and the server serves everyone else afterwards.
fn hostile_requests_are_answered_or_refused(target: &Target) -> CheckResult {
    let json = target.url(TestType::Json);
    let head = |request_line: &str, headers: &str| {
        format!("{request_line}\r\nHost: tfb-server\r\n{headers}Connection: close\r\n\r\n")
    };
    // RFC 9112 5.2 and 2.2, RFC 9110 5.5: obs-fold and a bare CR are refused or read as a
    // space; a NUL is refused.
    let cases: [(&str, String, &[u16]); 6] = [
        (
            "an obs-fold header",
            head(&format!("GET {json} HTTP/1.1"), "X-Folded: a\r\n b\r\n"),
            &[200, 400],
        ),
        (
            "a bare CR in a header",
            head(&format!("GET {json} HTTP/1.1"), "X-Cr: a\rb\r\n"),
            &[200, 400],
        ),
        (
            "a NUL in a header",
            head(&format!("GET {json} HTTP/1.1"), "X-Nul: a\0b\r\n"),
            &[400],
        ),
        (
            "a 100 KB request target",
            head(&format!("GET {json}?{} HTTP/1.1", "a".repeat(100_000)), ""),
            &[400, 414, 431],
        ),
        (
            "HTTP/2's connection preface",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
            &[400, 505],
        ),
        // Routes take no body: answered without waiting for the gigabyte, or refused.
        (
            "a 1 GB Content-Length that never comes",
            head(
                &format!("GET {json} HTTP/1.1"),
                "Content-Length: 1000000000\r\n",
            ),
            &[200, 400, 413],
        ),
    ];
    for (what, request, allowed) in cases {
        let outcome =
            if what.contains("100 KB") && target.excepts(ContractException::RequestHeadLimit) {
                answered_despite_its_size(target, request.as_bytes())
            } else {
                rejected_with_400_or_close(target, request.as_bytes(), allowed)
            };
        outcome.map_err(|error| format!("{what}: {error}"))?;
        still_serving(target).map_err(|error| format!("{what}: {error}"))?;
    }
    // RFC 9112 3.2.2: a server must accept the absolute form.
    let absolute = format!("http://tfb-server{json}");
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let response = connection
        .get(&absolute)
        .map_err(|error| format!("GET {absolute}: {error}"))?;
    check_success(&response, json, ContentKind::Json)
        .map_err(|error| format!("the absolute form GET {absolute}: {error}"))?;
    // A thousand parameters before the one that counts.
    let many = format!("{}3&{}", target.url(TestType::Query), "x=1&".repeat(1000));
    let response = target.get(&many)?;
    let rows = parse_world_list(&response, &many)?;
    if response.status != 200 || rows.len() != 3 {
        return Err(format!(
            "{} parameters after queries=3: status {} with {} rows",
            1000,
            response.status,
            rows.len()
        ));
    }
    Ok(())
}

/// Past the contract's head limit (16 KiB; actix-web's fixed 128 KiB for actix): 200 KB, under
/// hyper's own ~400 KB buffer, and 1 MB.
fn oversized_header_is_rejected(target: &Target) -> CheckResult {
    for size in [200 * 1024, 1 << 20] {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: tfb-server\r\nX-Oversized: {}\r\n\r\n",
            target.url(TestType::Json),
            "a".repeat(size)
        );
        let outcome = if target.excepts(ContractException::RequestHeadLimit) {
            answered_despite_its_size(target, request.as_bytes())
        } else {
            // 431 (Request Header Fields Too Large) is the precise form of 400 here.
            rejected_with_400_or_close(target, request.as_bytes(), &[400, 431])
        };
        outcome.map_err(|error| format!("a {size}-byte header: {error}"))?;
    }
    still_serving(target)
}

/// Under the `request-head-limit` exception: a head past the limit is read and answered 200.
fn answered_despite_its_size(target: &Target, request: &[u8]) -> CheckResult {
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let refused = |seen: String| exception_gone(ContractException::RequestHeadLimit, &seen);
    if connection.send(request).is_err() {
        return Err(refused("the server stopped reading the head".to_owned()));
    }
    match connection.read_response() {
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(refused(format!("it answered {}", response.status))),
        Err(error) => Err(refused(format!("it closed the connection ({error})"))),
    }
}

/// A client that never sends a complete head, idle or slow, is cut after the contract's
/// 10 s; the check waits far longer, so only a server that keeps such clients fails it.
fn slow_and_idle_clients_are_cut(target: &Target) -> CheckResult {
    const PATIENCE: Duration = Duration::from_secs(60);
    let open = |first_bytes: &[u8]| -> Result<std::net::TcpStream, String> {
        let mut stream =
            std::net::TcpStream::connect(target.address()).map_err(|error| error.to_string())?;
        std::io::Write::write_all(&mut stream, first_bytes).map_err(|error| error.to_string())?;
        stream
            .set_read_timeout(Some(PATIENCE))
            .map_err(|error| error.to_string())?;
        Ok(stream)
    };
    let idle = open(b"")?;
    let slow =
        open(format!("GET {} HTTP/1.1\r\nHost: tfb", target.url(TestType::Json)).as_bytes())?;
    if target.excepts(ContractException::ClientHeadTimeout) {
        return kept_past_the_head_timeout([("an idle client", idle), ("a half-sent head", slow)]);
    }
    for (client, mut stream) in [("an idle client", idle), ("a half-sent head", slow)] {
        let mut rest = Vec::new();
        match std::io::Read::read_to_end(&mut stream, &mut rest) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(error) => {
                return Err(format!(
                    "{client} was still connected after {PATIENCE:?} ({error})"
                ));
            }
        }
        if !rest.is_empty() && !rest.starts_with(b"HTTP/1.1 408") {
            return Err(format!(
                "{client}: expected the connection closed (or a 408), got {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(60)])
            ));
        }
    }
    still_serving(target)
}

/// Under the `client-head-timeout` exception: both clients are still connected well past the
/// contract's 10 s.
fn kept_past_the_head_timeout(clients: [(&str, std::net::TcpStream); 2]) -> CheckResult {
    // The contract's head timeout and a margin; a server that cuts later under load only
    // delays noticing the fix.
    const PAST_THE_TIMEOUT: Duration = Duration::from_secs(15);
    let started = Instant::now();
    for (client, mut stream) in clients {
        let left = PAST_THE_TIMEOUT.saturating_sub(started.elapsed());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(|error| error.to_string())?;
        match std::io::Read::read(&mut stream, &mut [0; 64]) {
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            _ => {
                return Err(exception_gone(
                    ContractException::ClientHeadTimeout,
                    &format!("{client} was cut within {PAST_THE_TIMEOUT:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// Idle clients take every file descriptor the server may open: it must not fall over, and
/// once the idle ones are cut (the contract's 10 s) it serves new clients again.
fn descriptor_limit_is_survived(target: &Target) -> CheckResult {
    const LIMIT: u32 = 128;
    const PATIENCE: Duration = Duration::from_secs(60);
    let mut server = ServerProcess::start(
        target.binary,
        target.database_url,
        target.url(TestType::Json),
    )
    .map_err(|error| format!("{error:#}"))?;
    let limited = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", server.pid()))
        .arg(format!("--nofile={LIMIT}:{LIMIT}"))
        .status()
        .map_err(|error| format!("running prlimit: {error}"))?;
    if !limited.success() {
        return Err(format!("prlimit exited with {limited}"));
    }
    // Twice the limit: the server runs out of descriptors with clients still queued.
    let idle: Vec<std::net::TcpStream> = (0..2 * LIMIT)
        .map(|_| std::net::TcpStream::connect(server.address()))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("opening idle connections: {error}"))?;
    let started = Instant::now();
    let cpu_before = cpu_seconds(server.pid());
    let url = target.url(TestType::Json);
    if target.excepts(ContractException::AcceptBackoff) {
        spins_out_of_descriptors(&mut server, cpu_before)?;
        // Serving again needs the idle clients gone, as the framework keeps them.
        drop(idle);
        served_again(server.address(), url, "the idle clients left")?;
        let status = server.terminate().map_err(|error| format!("{error:#}"))?;
        return status
            .success()
            .then_some(())
            .ok_or_else(|| format!("after SIGTERM the server exited with {status}"));
    }
    loop {
        if let Some(status) = server.exited() {
            return Err(format!("out of descriptors, the server exited ({status})"));
        }
        match http::get(server.address(), url) {
            Ok(response) if response.status == 200 => break,
            _ if started.elapsed() > PATIENCE => {
                return Err(format!(
                    "with {} idle clients and {LIMIT} descriptors, GET {url} was not served \
                     within {PATIENCE:?}",
                    idle.len()
                ));
            }
            _ => thread::sleep(Duration::from_millis(200)),
        }
    }
    // CPU time, not wall time: a server that waits costs next to none however busy the
    // machine, one that retries its accepts in a loop costs seconds.
    let spent = cpu_seconds(server.pid()) - cpu_before;
    if spent > 1.0 {
        return Err(format!(
            "out of descriptors for {:.0} s, the server used {spent:.1} s of CPU: it retries \
             instead of waiting",
            started.elapsed().as_secs_f64()
        ));
    }
    drop(idle);
    let status = server.terminate().map_err(|error| format!("{error:#}"))?;
    if !status.success() {
        return Err(format!("after SIGTERM the server exited with {status}"));
    }
    Ok(())
}

/// Under the `accept-backoff` exception: out of descriptors, the server burns a second of CPU
/// (it would take a minute of waiting to burn none).
fn spins_out_of_descriptors(server: &mut ServerProcess, cpu_before: f64) -> CheckResult {
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    while cpu_seconds(server.pid()) - cpu_before < 1.0 {
        if let Some(status) = server.exited() {
            return Err(format!("out of descriptors, the server exited ({status})"));
        }
        if started.elapsed() > PATIENCE {
            return Err(exception_gone(
                ContractException::AcceptBackoff,
                &format!("out of descriptors for {PATIENCE:?}, it used under a second of CPU"),
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// User plus system CPU time of a process, from `/proc/PID/stat` (ticks of 1/100 s).
fn cpu_seconds(pid: nix::unistd::Pid) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, rest)| rest)
        .split(' ')
        .collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
    };
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / 100.0
}

/// A second instance on a port the first holds must refuse to start, not share the traffic.
fn refuses_a_port_in_use(target: &Target) -> CheckResult {
    const PATIENCE: Duration = Duration::from_secs(60);
    let mut second = std::process::Command::new(target.binary)
        .env("PORT", target.address().port().to_string())
        .env("DATABASE_URL", target.database_url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("starting a second instance: {error}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().map_err(|error| error.to_string())? {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = second.kill();
            let _ = second.wait();
            return Err(format!(
                "a second instance on port {} was still running after {PATIENCE:?}",
                target.address().port()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = second
        .wait_with_output()
        .map_err(|error| error.to_string())?;
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if status.success() || !said.contains(&target.address().port().to_string()) {
        return Err(format!(
            "a second instance on a port in use exited with {status}, saying {said:?}; expected a failure naming the port"
        ));
    }
    still_serving(target)
}

fn rejected_with_400_or_close(target: &Target, request: &[u8], allowed: &[u16]) -> CheckResult {
    let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    // The server may close before reading all of an oversized request; that is a rejection too.
    let _ = connection.send(request);
    if target.excepts(ContractException::ConnectionClose) {
        // A server that never closes: its one answer, if any, is what counts.
        return match connection.read_response() {
            Ok(response) if allowed.contains(&response.status) => Ok(()),
            Ok(response) => Err(format!(
                "{shown:?}: expected {allowed:?} or a closed connection, got {}",
                response.status
            )),
            Err(_) => Ok(()),
        };
    }
    let answer = connection.read_until_closed().map_err(|error| {
        format!("{shown:?}: the server neither answered nor closed the connection: {error}")
    })?;
    if answer.is_empty() {
        return Ok(());
    }
    let status_line = String::from_utf8_lossy(&answer[..answer.len().min(40)]).into_owned();
    let status: Option<u16> = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok());
    match status {
        Some(status) if allowed.contains(&status) => Ok(()),
        _ => Err(format!(
            "{shown:?}: expected {allowed:?} or a closed connection, got {status_line:?}"
        )),
    }
}

fn still_serving(target: &Target) -> CheckResult {
    let url = target.url(TestType::Json);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)
        .map_err(|error| format!("after the bad request, the server no longer serves: {error}"))
}

// ---------------------------------------------------------------------------------------------
// The process

fn logs_one_line_only(target: &Target) -> CheckResult {
    for (_, url) in target.test.paths() {
        target.get(url)?;
    }
    let _ = target.get("/does-not-exist");
    let mut malformed = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let _ = malformed.send(b"THIS IS NOT HTTP\r\n\r\n");
    let _ = malformed.read_response();
    if target.excepts(ContractException::OneLineOnly) {
        return prints_per_malformed_request(target);
    }
    let output = target.server.output();
    if output.len() != 1 {
        return Err(format!(
            "expected one line (the ready line) and nothing per request, got {} lines:\n{}",
            output.len(),
            output.join("\n")
        ));
    }
    Ok(())
}

/// Under the `one-line-only` exception: the malformed request was printed about.
fn prints_per_malformed_request(target: &Target) -> CheckResult {
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    while target.server.output().len() <= 1 {
        if started.elapsed() > PATIENCE {
            return Err(exception_gone(
                ContractException::OneLineOnly,
                "a malformed request printed nothing",
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Every declared contract exception is named in the test's `notes` and in
/// implementations/README.md, where users read what a framework does not do.
fn exceptions_are_documented(target: &Target) -> CheckResult {
    let notes = target
        .test
        .other
        .get("notes")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let readme = std::fs::read_to_string(workspace_root().join("implementations/README.md"))
        .map_err(|error| format!("reading implementations/README.md: {error}"))?;
    for clause in target.implementation.exceptions.keys() {
        if !notes.contains(clause.name()) {
            return Err(format!(
                "benchmark_config.json's notes do not name the exception `{}`",
                clause.name()
            ));
        }
        if !readme.contains(&format!("`{}`", clause.name())) {
            return Err(format!(
                "implementations/README.md does not name the exception `{}`",
                clause.name()
            ));
        }
    }
    Ok(())
}

/// The requests are certainly in flight at the signal, whatever the machine's load: the
/// network to the database stalls (a proxy holds their statements) while they are sent, and the
/// signal goes only once the kernel shows every request read off its socket. The proxy resumes
/// once the server refuses connections, well inside the contract's 5 s bound on a silent
/// database (a locked table would meet the 1 s statement timeout instead).
fn sigterm_drains_and_exits_zero(target: &Target) -> CheckResult {
    const IN_FLIGHT: usize = 6;
    let url = format!("{}20", target.url(TestType::Query));
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let proxy = StallingProxy::start(SocketAddr::from(([127, 0, 0, 1], cluster.port())))
        .map_err(|error| format!("starting the proxy: {error}"))?;
    let through_proxy = cluster.url().replace(
        &format!(":{}/", cluster.port()),
        &format!(":{}/", proxy.address().port()),
    );
    let mut server = ServerProcess::start(target.binary, &through_proxy, target.url(TestType::Db))
        .map_err(|error| format!("{error:#}"))?;
    served_again(server.address(), &url, "the server started")?;
    proxy.stall();
    let mut in_flight = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut connection =
            Connection::open(server.address()).map_err(|error| error.to_string())?;
        connection
            .send(&http::get_request(&url))
            .map_err(|error| error.to_string())?;
        in_flight.push(connection);
    }
    for connection in &mut in_flight {
        let client = connection
            .local_address()
            .map_err(|error| error.to_string())?;
        wait_until_read(server.address(), client)?;
    }
    nix::sys::signal::kill(server.pid(), nix::sys::signal::Signal::SIGTERM)
        .map_err(|error| error.to_string())?;
    if target.excepts(ContractException::GracefulStop) {
        let status = server
            .wait_for_exit(Duration::from_secs(20))
            .map_err(|error| format!("{error:#}"))?;
        proxy.resume();
        if status.code() != Some(0) {
            return Err(format!(
                "after SIGTERM the server exited with {status}, expected 0"
            ));
        }
        for (index, connection) in in_flight.iter_mut().enumerate() {
            if connection.read_response().is_ok() {
                return Err(exception_gone(
                    ContractException::GracefulStop,
                    &format!("in-flight request {index} was answered at SIGTERM"),
                ));
            }
        }
        return Ok(());
    }
    // The answers must come after the server has taken in the stop, or no server could tell
    // its clients: it has once it refuses connections.
    wait_until_refused(server.address())?;
    proxy.resume();
    for (index, connection) in in_flight.iter_mut().enumerate() {
        let response = connection.read_response().map_err(|error| {
            format!("in-flight request {index} was dropped at SIGTERM: {error}")
        })?;
        let rows = parse_world_list(&response, &url)?;
        if response.status != 200 || rows.len() != 20 {
            return Err(format!(
                "in-flight request {index}: status {} with {} rows",
                response.status,
                rows.len()
            ));
        }
        // A keep-alive client told nothing sends its next request into a closing socket, and
        // under load loses it to a reset.
        if !response
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
        {
            return Err(format!(
                "in-flight request {index}: answered after SIGTERM without `Connection: close`"
            ));
        }
    }
    let status = server
        .wait_for_exit(Duration::from_secs(20))
        .map_err(|error| format!("{error:#}"))?;
    if status.code() != Some(0) {
        return Err(format!(
            "after SIGTERM the server exited with {status}, expected 0"
        ));
    }
    if Connection::open(server.address()).is_ok() {
        return Err("the server still accepts connections after exiting".to_owned());
    }
    Ok(())
}

/// Returns once `address` refuses connections: the server has stopped accepting.
fn wait_until_refused(address: SocketAddr) -> CheckResult {
    // Only a server that never stops accepting hits this.
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    while std::net::TcpStream::connect(address).is_ok() {
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "still accepting connections {PATIENCE:?} after SIGTERM"
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn connect_database(url: &str) -> Result<postgres::Client, String> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|error| format!("connecting to the database: {error}"))
}

/// Returns once the server has taken every byte the client sent off the socket.
fn wait_until_read(server: SocketAddr, client: SocketAddr) -> CheckResult {
    // Only a server that never reads hits this; a busy one reads in milliseconds.
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    loop {
        match http::unread_by_server(server, client) {
            Ok(Some(0)) => return Ok(()),
            Ok(Some(unread)) if started.elapsed() > PATIENCE => {
                return Err(format!(
                    "the server left {unread} bytes of a request unread for {PATIENCE:?}"
                ));
            }
            Ok(Some(_)) => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return Err(format!(
                    "the connection from {client} to {server} is not in the kernel's TCP table"
                ));
            }
            Err(error) => return Err(format!("reading the kernel's TCP table: {error}")),
        }
    }
}

/// Runs the conformance crate's full verification (TFB's, with C = 512, plus the strict checks)
/// against this test on a private cluster, so the statement counts see no other traffic. Our
/// reference implementations must pass it without a single warn.
fn tfb_verification(target: &Target) -> CheckResult {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let ready = target.test.ready_path();
    let server = ServerProcess::start(target.binary, &cluster.url(), ready)
        .map_err(|error| format!("{error:#}"))?;
    let verification =
        conformance::Target::new(&format!("http://{}", server.address()), Some(cluster.url()))
            .with_test(target.test);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let report = runtime.block_on(conformance::verify(&verification));
    let problems: Vec<String> = report
        .types
        .iter()
        .flat_map(|type_report| &type_report.findings)
        .filter(|finding| finding.level != conformance::Level::Pass)
        .map(|finding| {
            let origin = if finding.strict { " (strict)" } else { "" };
            format!(
                "{} [{}]{origin} {}: {}",
                finding.level, finding.check, finding.url, finding.message
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "TFB verdict {}; findings:\n{}",
            report.verdict(),
            problems.join("\n")
        ))
    }
}

/// How many requests the statement-count burst sends at once, each on its own connection.
const BURST: usize = 64;

/// On a private cluster, counts in `pg_stat_statements` what a burst of concurrent requests
/// executed, the way TFB's verifier does, but exactly: one SELECT per row read, one query for
/// the fortunes, for updates one SELECT per row plus exactly one UPDATE per request, and none for
/// cached queries once the cache is filled.
fn statement_counts(target: &Target) -> CheckResult {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let server = ServerProcess::start(target.binary, &cluster.url(), target.url(TestType::Db))
        .map_err(|error| format!("{error:#}"))?;
    let mut database = connect_database(&cluster.url())?;
    let cases = [
        (TestType::Db, "", "world", 1, 1),
        (TestType::Query, "20", "world", 20, 20),
        (TestType::Fortune, "", "fortune", 1, 12),
        (TestType::Update, "20", "world", 20, 20),
        (TestType::CachedQuery, "20", "world", 0, 0),
    ];
    for (test_type, suffix, table, selects_per_request, rows_per_request) in cases {
        let Some(base) = target.test.path(test_type) else {
            continue;
        };
        let url = format!("{base}{suffix}");
        if test_type == TestType::CachedQuery {
            // The cache answers only once it holds the table, so this burst waits out the fill.
            burst(server.address(), &url)?;
        }
        let before = statement_counters(&mut database, table)?;
        burst(server.address(), &url)?;
        let after = statement_counters(&mut database, table)?;
        let delta = |pick: fn(&Counters) -> i64| pick(&after) - pick(&before);
        let (selects, rows_read) = (delta(|c| c.select_calls), delta(|c| c.rows_read));
        let (updates, rows_updated) = (delta(|c| c.update_calls), delta(|c| c.rows_updated));
        let requests = BURST as i64;
        if selects != selects_per_request * requests || rows_read != rows_per_request * requests {
            return Err(format!(
                "{BURST} × GET {url}: {selects} SELECTs reading {rows_read} {table} rows; expected {} and {}",
                selects_per_request * requests,
                rows_per_request * requests
            ));
        }
        let (expected_updates, most_rows) = if test_type == TestType::Update {
            (requests, 20 * requests)
        } else {
            (0, 0)
        };
        // Ids drawn twice in one request are one row, so a bulk UPDATE may write a few less.
        let fewest_rows = most_rows * 95 / 100;
        if updates != expected_updates || !(fewest_rows..=most_rows).contains(&rows_updated) {
            return Err(format!(
                "{BURST} × GET {url}: {updates} UPDATEs writing {rows_updated} rows; expected \
                 {expected_updates} (one per request) writing {fewest_rows}..={most_rows}"
            ));
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Counters {
    select_calls: i64,
    rows_read: i64,
    update_calls: i64,
    rows_updated: i64,
}

/// TFB's filters: the table as a whole word anywhere in the statement, then `select` or `update`
/// as substrings. The patterns are literals, which pg_stat_statements stores as `$1`, so these
/// queries never count themselves.
fn statement_counters(database: &mut postgres::Client, table: &str) -> Result<Counters, String> {
    let row = database
        .query_one(
            &format!(
                "SELECT \
                   coalesce(sum(calls) FILTER (WHERE query ~* 'select'), 0)::int8, \
                   coalesce(sum(rows) FILTER (WHERE query ~* 'select'), 0)::int8, \
                   coalesce(sum(calls) FILTER (WHERE query ~* 'update'), 0)::int8, \
                   coalesce(sum(rows) FILTER (WHERE query ~* 'update'), 0)::int8 \
                 FROM pg_stat_statements WHERE query ~* '[[:<:]]{table}[[:>:]]'"
            ),
            &[],
        )
        .map_err(|error| format!("reading pg_stat_statements: {error}"))?;
    Ok(Counters {
        select_calls: row.get(0),
        rows_read: row.get(1),
        update_calls: row.get(2),
        rows_updated: row.get(3),
    })
}

/// `BURST` connections send one request each, all at once; every one must succeed.
fn burst(address: SocketAddr, url: &str) -> CheckResult {
    let start = Arc::new(std::sync::Barrier::new(BURST));
    let clients: Vec<_> = (0..BURST)
        .map(|_| {
            let (start, url) = (Arc::clone(&start), url.to_owned());
            thread::spawn(move || -> CheckResult {
                let mut connection =
                    Connection::open(address).map_err(|error| error.to_string())?;
                start.wait();
                let response = connection
                    .get(&url)
                    .map_err(|error| format!("GET {url}: {error}"))?;
                if response.status != 200 {
                    return Err(format!(
                        "GET {url} in the burst: status {}",
                        response.status
                    ));
                }
                Ok(())
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .map_err(|_| "a burst client panicked".to_owned())??;
    }
    Ok(())
}

/// Stops PostgreSQL under a running server: database requests must fail fast with a short 5xx
/// while the rest keeps serving, and must succeed again within 5 s of PostgreSQL's return.
/// The contract answers a request it cannot serve from the database within a second; the test
/// allows slack for a loaded machine, since the fault it catches is a wait as long as the outage.
const PROMPT_FAILURE: Duration = Duration::from_secs(3);

/// How long a server may take to serve again once PostgreSQL is back; servers retry every 200 ms,
/// so only one that never reconnects comes near it.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(30);

/// Every database URL of every test of the implementation, `queries` ones with a count.
fn database_paths(target: &Target) -> Vec<String> {
    target
        .implementation
        .config
        .tests()
        .flat_map(|(_, test)| test.paths())
        .filter_map(|(test_type, url)| match test_type {
            TestType::Db | TestType::Fortune => Some(url.to_owned()),
            TestType::Query | TestType::Update => Some(format!("{url}2")),
            _ => None,
        })
        .collect()
}

/// The answer the contract gives a request it cannot serve from the database: a 5xx whose body
/// says why in a line, not a page and not an empty reply that looks like a crash.
fn short_server_error(path: &str, situation: &str, response: &Response) -> CheckResult {
    if (500..600).contains(&response.status)
        && !response.body.is_empty()
        && response.body.len() <= 200
    {
        return Ok(());
    }
    Err(format!(
        "GET {path} {situation}: expected a 5xx with a short body, got {} {:?}",
        response.status,
        response.text()
    ))
}

/// Asks `path` until it answers 200, for at most [`RECOVERY_PATIENCE`].
fn served_again(address: SocketAddr, path: &str, outage: &str) -> CheckResult {
    let back = Instant::now();
    loop {
        let response = http::get(address, path).map_err(|error| format!("GET {path}: {error}"))?;
        if response.status == 200 {
            if !path.contains("fortune") {
                parse_json(&response, path)?;
            }
            return Ok(());
        }
        if back.elapsed() > RECOVERY_PATIENCE {
            return Err(format!(
                "GET {path} still answered {} {:?} {RECOVERY_PATIENCE:?} after {outage}",
                response.status,
                response.text()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The network to the database stops forwarding, connections left open: every database request
/// gets a short 5xx instead of waiting as long as the stall does, and once the network is back
/// the server serves again.
fn database_stall_is_survived(target: &Target) -> CheckResult {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let proxy = StallingProxy::start(SocketAddr::from(([127, 0, 0, 1], cluster.port())))
        .map_err(|error| format!("starting the proxy: {error}"))?;
    let through_proxy = cluster.url().replace(
        &format!(":{}/", cluster.port()),
        &format!(":{}/", proxy.address().port()),
    );
    let server = ServerProcess::start(target.binary, &through_proxy, target.url(TestType::Db))
        .map_err(|error| format!("{error:#}"))?;
    let paths = database_paths(target);
    for path in &paths {
        served_again(server.address(), path, "the server started")?;
    }
    proxy.stall();
    // All at once, as a stall meets a server with requests of every kind in flight; each on its
    // own connection, as different clients.
    let address = server.address();
    let answers: Vec<_> = thread::scope(|scope| {
        let asking: Vec<_> = paths
            .iter()
            .map(|path| scope.spawn(move || (path, http::get(address, path))))
            .collect();
        asking.into_iter().map(|asking| asking.join()).collect()
    });
    for answer in answers {
        let (path, response) = answer.map_err(|_| "a request thread panicked".to_owned())?;
        let response = response.map_err(|error| {
            format!("GET {path} with the database stalled: no answer ({error})")
        })?;
        short_server_error(path, "with the database stalled", &response)?;
    }
    proxy.resume();
    for path in &paths {
        served_again(server.address(), path, "the network came back")?;
    }
    Ok(())
}

/// Another session locks `world` against writes for as long as the check runs: updates must
/// fail with a short 5xx instead of waiting for the lock, and reads, which the lock does not
/// block, must keep being served while updates are waiting.
fn locked_table_holds_only_updates(target: &Target) -> CheckResult {
    const UPDATERS: usize = 4;
    const READS: usize = 20;
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let server = ServerProcess::start(target.binary, &cluster.url(), target.url(TestType::Db))
        .map_err(|error| format!("{error:#}"))?;
    let paths = database_paths(target);
    let (updates, reads): (Vec<&String>, Vec<&String>) =
        paths.iter().partition(|path| path.contains("update"));
    let mut holder = connect_database(&cluster.url())?;
    let mut observer = connect_database(&cluster.url())?;
    let mut lock = holder
        .transaction()
        .map_err(|error| format!("BEGIN: {error}"))?;
    lock.batch_execute("LOCK TABLE world IN EXCLUSIVE MODE")
        .map_err(|error| format!("locking world: {error}"))?;
    let done = std::sync::atomic::AtomicBool::new(false);
    let outcome = thread::scope(|scope| {
        let updaters: Vec<_> = (0..UPDATERS)
            .map(|index| {
                let path = updates[index % updates.len()];
                let done = &done;
                let address = server.address();
                scope.spawn(move || -> CheckResult {
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let response = http::get(address, path).map_err(|error| {
                            format!("GET {path} with world locked: no answer ({error})")
                        })?;
                        short_server_error(path, "with world locked", &response)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let reading = (|| {
            wait_for_lock_waiters(&mut observer)?;
            for round in 0..READS {
                let path = reads[round % reads.len()];
                let response = http::get(server.address(), path)
                    .map_err(|error| format!("GET {path} with updates waiting: {error}"))?;
                if response.status != 200 {
                    return Err(format!(
                        "GET {path} with updates waiting on a lock: expected 200, got {} {:?}",
                        response.status,
                        response.text()
                    ));
                }
            }
            Ok(())
        })();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let updated = updaters.into_iter().try_for_each(|updater| {
            updater
                .join()
                .unwrap_or_else(|_| Err("an updater thread panicked".to_owned()))
        });
        reading.and(updated)
    });
    lock.commit().map_err(|error| format!("COMMIT: {error}"))?;
    outcome?;
    for path in updates {
        served_again(server.address(), path, "the lock was released")?;
    }
    Ok(())
}

/// Returns once some session waits on a lock: the server's updates have reached the table.
fn wait_for_lock_waiters(observer: &mut postgres::Client) -> CheckResult {
    // Only a server that never sends an update comes near it.
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    loop {
        let row = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                &[],
            )
            .map_err(|error| format!("reading pg_stat_activity: {error}"))?;
        if row.get::<_, i64>(0) > 0 {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            return Err(format!("no update waited on the lock within {PATIENCE:?}"));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn database_restart_is_survived(target: &Target) -> CheckResult {
    let mut cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let server = ServerProcess::start(target.binary, &cluster.url(), target.url(TestType::Json))
        .map_err(|error| format!("{error:#}"))?;
    let database_paths = database_paths(target);
    let get = |path: &str| {
        http::get(server.address(), path).map_err(|error| format!("GET {path}: {error}"))
    };
    for path in &database_paths {
        let response = get(path)?;
        if response.status != 200 {
            return Err(format!(
                "GET {path} before the restart: status {}",
                response.status
            ));
        }
    }
    cluster.stop().map_err(|error| format!("{error:#}"))?;
    for round in 0..2 {
        for path in &database_paths {
            let started = Instant::now();
            let response = get(path)?;
            let elapsed = started.elapsed();
            short_server_error(
                path,
                &format!("with the database down (round {round})"),
                &response,
            )?;
            if elapsed > PROMPT_FAILURE {
                return Err(format!(
                    "GET {path} with the database down took {elapsed:?}, more than {PROMPT_FAILURE:?}"
                ));
            }
        }
    }
    let json = get(target.url(TestType::Json))?;
    if json.status != 200 {
        return Err(format!(
            "with the database down, {} answered {}",
            target.url(TestType::Json),
            json.status
        ));
    }
    cluster.restart().map_err(|error| format!("{error:#}"))?;
    for path in &database_paths {
        served_again(server.address(), path, "PostgreSQL was back")?;
    }
    Ok(())
}
