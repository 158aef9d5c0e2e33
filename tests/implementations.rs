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

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;
use tfb_database::{Cluster, Database};
use tfb_harness::{
    assertions::{
        CheckResult, ContentKind, check_success, check_world, parse_json, parse_world_list,
    },
    build,
    discover::{self, Implementation, TestConfig},
    http::{self, Connection, Response},
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

    fn url(&self, kind: &str) -> &str {
        self.test
            .urls()
            .into_iter()
            .find(|(url_kind, _)| *url_kind == kind)
            .map(|(_, url)| url)
            .expect("checks run only where their URL is configured")
    }

    fn get(&self, path: &str) -> Result<Response, String> {
        http::get(self.address(), path).map_err(|error| format!("GET {path}: {error}"))
    }
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
        .and_then(|(_, test)| test.urls().first().map(|(_, url)| *url))
        .unwrap_or("/")
}

struct Check {
    name: &'static str,
    /// The URL kind the check needs; `None` runs it once per implementation, on `default`;
    /// `Some(EVERY_TEST)` on every test of the config.
    needs: Option<&'static str>,
    needs_throwaway_cluster: bool,
    run: fn(&Target) -> CheckResult,
}

const EVERY_TEST: &str = "every test";

impl Check {
    fn applies_to(&self, test: &TestConfig, key: &str) -> bool {
        match self.needs {
            Some(EVERY_TEST) => true,
            Some(kind) => test.urls().iter().any(|(url_kind, _)| *url_kind == kind),
            None => key == "default",
        }
    }
}

const fn check(
    name: &'static str,
    needs: Option<&'static str>,
    run: fn(&Target) -> CheckResult,
) -> Check {
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
        Some("json"),
        json_body_and_headers,
    ),
    check(
        "plaintext::body_and_headers",
        Some("plaintext"),
        plaintext_body_and_headers,
    ),
    check("db::body_and_headers", Some("db"), db_body_and_headers),
    check("db::ids_spread_over_the_table", Some("db"), db_ids_spread),
    check("query::edge_cases", Some("query"), query_edge_cases),
    check("update::edge_cases", Some("update"), update_edge_cases),
    check(
        "update::rows_are_stored",
        Some("update"),
        update_rows_are_stored,
    ),
    check("fortune::exact_page", Some("fortune"), fortune_exact_page),
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
        "http::oversized_header_is_rejected",
        None,
        oversized_header_is_rejected,
    ),
    check("process::logs_one_line_only", None, logs_one_line_only),
    check(
        "process::sigterm_drains_and_exits_zero",
        None,
        sigterm_drains_and_exits_zero,
    ),
    Check {
        name: "conformance::tfb_verification",
        needs: Some(EVERY_TEST),
        needs_throwaway_cluster: true,
        run: tfb_verification,
    },
    Check {
        name: "database::statement_counts",
        needs: Some("db"),
        needs_throwaway_cluster: true,
        run: statement_counts,
    },
    Check {
        name: "database::restart_is_survived",
        needs: None,
        needs_throwaway_cluster: true,
        run: database_restart_is_survived,
    },
];

// ---------------------------------------------------------------------------------------------
// Test types

fn json_body_and_headers(target: &Target) -> CheckResult {
    let url = target.url("json");
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
    let url = target.url("plaintext");
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
    let url = target.url("db");
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)?;
    check_world(&parse_json(&response, url)?).map_err(|error| format!("GET {url}: {error}"))?;
    Ok(())
}

fn db_ids_spread(target: &Target) -> CheckResult {
    let url = target.url("db");
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
    list_edge_cases(target, target.url("query"))
}

fn update_edge_cases(target: &Target) -> CheckResult {
    let _writes = target
        .world_writes
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    list_edge_cases(target, target.url("update"))
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
    let url = format!("{}20", target.url("update"));
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
    let url = target.url("fortune");
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
    let url = target.url("plaintext");
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
        target.url("json").to_owned(),
        format!("{}3", target.url("query")),
        target.url("plaintext").to_owned(),
        target.url("db").to_owned(),
        target.url("fortune").to_owned(),
        format!("{}1", target.url("query")),
        target.url("json").to_owned(),
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
            path if path.starts_with(target.url("json")) => {
                response.body.starts_with(b"{\"message\"")
            }
            path if path.starts_with(target.url("plaintext")) => response.body == b"Hello, World!",
            path if path.starts_with(target.url("fortune")) => {
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
    let url = target.url("json");
    let first = target.get(url)?;
    thread::sleep(Duration::from_millis(1100));
    let second = target.get(url)?;
    match (first.header("date"), second.header("date")) {
        (Some(a), Some(b)) if a != b => Ok(()),
        (a, b) => Err(format!("Date did not change over 1.1 s: {a:?} then {b:?}")),
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
    let url = target.url("json");
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
    still_serving(target)
}

fn oversized_header_is_rejected(target: &Target) -> CheckResult {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: tfb-server\r\nX-Oversized: {}\r\n\r\n",
        target.url("json"),
        "a".repeat(1 << 20)
    );
    // 431 (Request Header Fields Too Large) is the precise form of 400 here.
    rejected_with_400_or_close(target, request.as_bytes(), &[400, 431])?;
    still_serving(target)
}

fn rejected_with_400_or_close(target: &Target, request: &[u8], allowed: &[u16]) -> CheckResult {
    let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
    let mut connection = Connection::open(target.address()).map_err(|error| error.to_string())?;
    // The server may close before reading all of an oversized request; that is a rejection too.
    let _ = connection.send(request);
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
    let url = target.url("json");
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)
        .map_err(|error| format!("after the bad request, the server no longer serves: {error}"))
}

// ---------------------------------------------------------------------------------------------
// The process

fn logs_one_line_only(target: &Target) -> CheckResult {
    for (_, url) in target.test.urls() {
        target.get(url)?;
    }
    let _ = target.get("/does-not-exist");
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

fn sigterm_drains_and_exits_zero(target: &Target) -> CheckResult {
    let url = format!("{}500", target.url("query"));
    let mut server = ServerProcess::start(target.binary, target.database_url, target.url("json"))
        .map_err(|error| format!("{error:#}"))?;
    let mut in_flight = Vec::new();
    for _ in 0..6 {
        let mut connection =
            Connection::open(server.address()).map_err(|error| error.to_string())?;
        connection
            .send(&http::get_request(&url))
            .map_err(|error| error.to_string())?;
        in_flight.push(connection);
    }
    // Let the server read the requests; 500 queries each keep them in flight past the signal.
    thread::sleep(Duration::from_millis(20));
    nix::sys::signal::kill(server.pid(), nix::sys::signal::Signal::SIGTERM)
        .map_err(|error| error.to_string())?;
    for (index, connection) in in_flight.iter_mut().enumerate() {
        let response = connection.read_response().map_err(|error| {
            format!("in-flight request {index} was dropped at SIGTERM: {error}")
        })?;
        let rows = parse_world_list(&response, &url)?;
        if response.status != 200 || rows.len() != 500 {
            return Err(format!(
                "in-flight request {index}: status {} with {} rows",
                response.status,
                rows.len()
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

/// Runs the conformance crate's full verification (TFB's, with C = 512, plus the strict checks)
/// against this test on a private cluster, so the statement counts see no other traffic. Our
/// reference implementations must pass it without a single warn.
fn tfb_verification(target: &Target) -> CheckResult {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let ready = target.test.urls().first().map_or("/", |(_, url)| *url);
    let server = ServerProcess::start(target.binary, &cluster.url(), ready)
        .map_err(|error| format!("{error:#}"))?;
    let key = target
        .implementation
        .config
        .tests()
        .find(|(_, test)| std::ptr::eq(*test, target.test))
        .map(|(key, _)| key.clone())
        .expect("the target's test is in its config");
    let verification =
        conformance::Target::new(&format!("http://{}", server.address()), Some(cluster.url()))
            .with_config(
                &target.implementation.dir.join("benchmark_config.json"),
                &key,
            )
            .map_err(|error| format!("{error:#}"))?;
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
/// the fortunes, and for updates one SELECT per row plus exactly one UPDATE per request.
fn statement_counts(target: &Target) -> CheckResult {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let server = ServerProcess::start(target.binary, &cluster.url(), target.url("db"))
        .map_err(|error| format!("{error:#}"))?;
    let mut database = postgres::Client::connect(&cluster.url(), postgres::NoTls)
        .map_err(|error| format!("connecting to the database: {error}"))?;
    let configured: Vec<(&str, &str)> = target.test.urls();
    let cases = [
        ("db", "", "world", 1, 1),
        ("query", "20", "world", 20, 20),
        ("fortune", "", "fortune", 1, 12),
        ("update", "20", "world", 20, 20),
    ];
    for (kind, suffix, table, selects_per_request, rows_per_request) in cases {
        let Some((_, base)) = configured.iter().find(|(url_kind, _)| *url_kind == kind) else {
            continue;
        };
        let url = format!("{base}{suffix}");
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
        let (expected_updates, most_rows) = if kind == "update" {
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
fn database_restart_is_survived(target: &Target) -> CheckResult {
    let mut cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let server = ServerProcess::start(target.binary, &cluster.url(), target.url("json"))
        .map_err(|error| format!("{error:#}"))?;
    let database_paths: Vec<String> = target
        .implementation
        .config
        .tests()
        .flat_map(|(_, test)| test.urls())
        .filter_map(|(kind, url)| match kind {
            "db" | "fortune" => Some(url.to_owned()),
            "query" | "update" => Some(format!("{url}2")),
            _ => None,
        })
        .collect();
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
            if !(500..600).contains(&response.status)
                || response.body.is_empty()
                || response.body.len() > 200
            {
                return Err(format!(
                    "GET {path} with the database down (round {round}): expected a 5xx with a short body, got {} {:?}",
                    response.status,
                    response.text()
                ));
            }
            if elapsed > Duration::from_secs(1) {
                return Err(format!(
                    "GET {path} with the database down took {elapsed:?}, more than 1 s"
                ));
            }
        }
    }
    let json = get(target.url("json"))?;
    if json.status != 200 {
        return Err(format!(
            "with the database down, {} answered {}",
            target.url("json"),
            json.status
        ));
    }
    cluster.restart().map_err(|error| format!("{error:#}"))?;
    let back = Instant::now();
    for path in &database_paths {
        loop {
            let response = get(path)?;
            if response.status == 200 {
                if !path.contains("fortune") {
                    parse_json(&response, path)?;
                }
                break;
            }
            if back.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "GET {path} still answered {} {:?} 5 s after PostgreSQL was back",
                    response.status,
                    response.text()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}
