//! The six test types, each verified as TFB's `verify()` does (spec §1), plus our strict checks.
//! Every function here is phase one: requests and body/header checks, run concurrently with the
//! other types. The database burst each type asks for runs afterwards, alone (see `lib.rs`).

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::{
    Check, CheckId, Target, TestType,
    client::{self, FetchError, Response, ResponseReader},
    db_counts::{self, CountSpec},
    fortune,
    headers::{ContentKind, verify_headers},
    json_checks::{
        TfbException, exception_finding, parse_body, verify_hello_world, verify_world,
        verify_world_list,
    },
    report::{Finding, Level, file_under},
};

/// The Accept headers TFB sends during verification.
pub const ACCEPT_JSON: &str =
    "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
pub const ACCEPT_HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
pub const ACCEPT_PLAINTEXT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";

/// The `queries` values TFB tries, the severity of their body problems, and the check names.
pub const QUERY_CASES: [(&str, Level, Check); 5] = [
    ("2", Level::Fail, Check::Case2ReturnsTwoItems),
    ("0", Level::Fail, Check::Case0ReturnsOneItem),
    ("foo", Level::Fail, Check::CaseFooReturnsOneItem),
    ("501", Level::Warn, Check::Case501Returns500Items),
    ("", Level::Fail, Check::CaseEmptyReturnsOneItem),
];

/// What phase one of a type hands to phase two.
pub struct PhaseOne {
    pub findings: Vec<Finding>,
    /// The database burst to run, when TFB's rules call for it.
    pub counts: Option<CountSpec>,
}

impl PhaseOne {
    fn done(findings: Vec<Finding>) -> Self {
        Self {
            findings,
            counts: None,
        }
    }
}

/// Why TFB would have abandoned a type: its request failed, or Python raised.
enum Abort {
    Fetch(FetchError),
    Exception(TfbException),
}

impl From<FetchError> for Abort {
    fn from(error: FetchError) -> Self {
        Abort::Fetch(error)
    }
}

impl From<TfbException> for Abort {
    fn from(exception: TfbException) -> Self {
        Abort::Exception(exception)
    }
}

/// Runs phase one of `test_type` against `url` (the full URL of its configured path).
pub async fn phase_one(target: &Target, test_type: TestType, path: &str) -> PhaseOne {
    let url = format!("{}{path}", target.base_url);
    let result = match test_type {
        TestType::Json => json(&url, path).await,
        TestType::Plaintext => plaintext(&url, path).await,
        TestType::Db => db(target, &url, path).await,
        TestType::Query => query(target, &url, path).await,
        TestType::Update => update(target, &url, path).await,
        TestType::Fortune => fortune_type(target, &url, path).await,
        TestType::CachedQuery => cached_query(&url, path).await,
    };
    match result {
        Ok(phase) => phase,
        Err(Abort::Fetch(error)) => PhaseOne::done(vec![
            Finding::fail(error.to_string(), &url).in_check(Check::Responds.of(test_type)),
        ]),
        Err(Abort::Exception(exception)) => PhaseOne::done(file_under(
            Check::NoException.of(test_type),
            vec![exception_finding(&exception, &url)],
        )),
    }
}

impl Finding {
    fn in_check(mut self, check: CheckId) -> Self {
        self.check = Some(check);
        self
    }
}

/// TFB's minimum lengths of the configured paths.
fn url_length_finding(test_type: TestType, path: &str, url: &str) -> Option<Finding> {
    let (name, minimum) = match test_type {
        TestType::Json => ("json", 5),
        TestType::Db => ("db", 3),
        TestType::Query => ("queries", 9),
        TestType::Update => ("update", 8),
        TestType::Fortune => ("fortunes", 9),
        TestType::Plaintext => ("plaintext", 10),
        TestType::CachedQuery => ("cached queries", 15),
    };
    (path.len() < minimum).then(|| {
        Finding::fail(
            format!(
                "Route for {name} must be at least {minimum} characters, found '{path}' instead"
            ),
            url,
        )
        .in_check(Check::UrlLength.of(test_type))
    })
}

fn status_findings(response: &Response, url: &str) -> Vec<Finding> {
    if response.status == 200 {
        Vec::new()
    } else {
        vec![Finding::fail(
            format!(
                "Invalid response status, found \"{}\", did not match \"200\"",
                response.status
            ),
            url,
        )]
    }
}

/// Strict: `Content-Length`, when sent, equals the body's length on the wire.
fn content_length_findings(response: &Response, url: &str) -> Vec<Finding> {
    match response.header("Content-Length").map(str::parse::<usize>) {
        Some(Ok(length)) if length != response.wire_length => vec![
            Finding::fail(
                format!(
                    "Content-Length says {length} bytes but the body has {}",
                    response.wire_length
                ),
                url,
            )
            .strict(),
        ],
        _ => Vec::new(),
    }
}

async fn json(url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let response = client::get(url, ACCEPT_JSON).await?;
    let value = match parse_body(&response.body, url) {
        Ok(value) => value,
        Err(finding) => {
            let mut findings = vec![finding.in_check(Check::Body.of(TestType::Json))];
            findings.extend(url_length_finding(TestType::Json, path, url));
            return Ok(PhaseOne::done(findings));
        }
    };
    if let Some(finding) = url_length_finding(TestType::Json, path, url) {
        return Ok(PhaseOne::done(vec![finding]));
    }
    let mut findings = file_under(
        Check::Body.of(TestType::Json),
        verify_hello_world(&value, url)?,
    );
    findings.extend(file_under(
        Check::Status.of(TestType::Json),
        status_findings(&response, url),
    ));
    findings.extend(file_under(
        Check::Headers.of(TestType::Json),
        verify_headers(&response, url, ACCEPT_JSON, ContentKind::Json).await,
    ));
    findings.extend(file_under(
        Check::ContentLength.of(TestType::Json),
        content_length_findings(&response, url),
    ));
    findings.extend(file_under(
        Check::Pipelining.of(TestType::Json),
        pipelined(url, ACCEPT_JSON, &response).await,
    ));
    Ok(PhaseOne::done(findings))
}

async fn plaintext(url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let response = client::get(url, ACCEPT_PLAINTEXT).await?;
    let mut findings = Vec::new();
    if response.body.is_empty() {
        findings.push(
            Finding::fail("Empty response", url).in_check(Check::Body.of(TestType::Plaintext)),
        );
    }
    findings.extend(url_length_finding(TestType::Plaintext, path, url));
    if !findings.is_empty() {
        return Ok(PhaseOne::done(findings));
    }
    let lowered = response.body.to_ascii_lowercase();
    if !lowered.windows(13).any(|window| window == b"hello, world!") {
        // TFB returns this fail alone.
        return Ok(PhaseOne::done(vec![
            Finding::fail("Could not find 'Hello, World!' in response.", url)
                .in_check(Check::Body.of(TestType::Plaintext)),
        ]));
    }
    if response.body.len() > 13 {
        findings.push(Finding::warn(
            format!(
                "Server is returning {} more bytes than are required. This may negatively affect benchmark performance.",
                response.body.len() - 13
            ),
            url,
        ));
    }
    let mut findings = file_under(Check::Body.of(TestType::Plaintext), findings);
    findings.extend(file_under(
        Check::Status.of(TestType::Plaintext),
        status_findings(&response, url),
    ));
    findings.extend(file_under(
        Check::Headers.of(TestType::Plaintext),
        verify_headers(&response, url, ACCEPT_PLAINTEXT, ContentKind::Plaintext).await,
    ));
    findings.extend(file_under(
        Check::ContentLength.of(TestType::Plaintext),
        content_length_findings(&response, url),
    ));
    findings.extend(file_under(
        Check::Pipelining.of(TestType::Plaintext),
        pipelined(url, ACCEPT_PLAINTEXT, &response).await,
    ));
    Ok(PhaseOne::done(findings))
}

/// Strict: 16 requests written at once on one connection get 16 responses, in order, each the
/// same as the answer to a lone request (`single`).
async fn pipelined(url: &str, accept: &str, single: &Response) -> Vec<Finding> {
    const DEPTH: usize = 16;
    let outcome = async {
        let parts = client::parse_url(url)?;
        let stream = tokio::net::TcpStream::connect(&parts.address)
            .await
            .map_err(|error| FetchError::Connection(error.to_string()))?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: keep-alive\r\n\r\n",
            parts.target, parts.authority
        );
        let mut reader = ResponseReader::new(stream);
        reader
            .stream()
            .write_all(request.repeat(DEPTH).as_bytes())
            .await
            .map_err(|error| FetchError::Connection(error.to_string()))?;
        for index in 0..DEPTH {
            let response = reader.read_response().await?;
            if response.status != single.status || response.body != single.body {
                return Ok(Some(format!(
                    "response {} of {DEPTH} is wrong: {:?}",
                    index + 1,
                    response.text()
                )));
            }
        }
        Ok::<_, FetchError>(None)
    };
    match tokio::time::timeout(client::TIMEOUT, outcome).await {
        Ok(Ok(None)) => Vec::new(),
        Ok(Ok(Some(problem))) => {
            vec![Finding::fail(format!("{DEPTH} pipelined requests: {problem}"), url).strict()]
        }
        Ok(Err(error)) => {
            vec![Finding::fail(format!("{DEPTH} pipelined requests: {error}"), url).strict()]
        }
        Err(_) => vec![
            Finding::fail(
                format!("{DEPTH} pipelined requests: no answer within 15 s"),
                url,
            )
            .strict(),
        ],
    }
}

fn count_spec(
    target: &Target,
    table: &'static str,
    url: String,
    queries_per_request: u64,
    rows_per_request: u64,
    updates: bool,
) -> Option<CountSpec> {
    target.database_url.as_ref()?;
    let concurrency = target.concurrency as u64;
    Some(CountSpec {
        table,
        url,
        accept: ACCEPT_JSON,
        concurrency: target.concurrency,
        expected_queries: queries_per_request * concurrency,
        expected_rows: rows_per_request * concurrency,
        updates,
    })
}

fn no_problems(findings: &[Finding]) -> bool {
    findings
        .iter()
        .all(|finding| finding.strict || finding.level == Level::Pass)
}

async fn db(target: &Target, url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let response = client::get(url, ACCEPT_JSON).await?;
    let value = match parse_body(&response.body, url) {
        Ok(value) => value,
        Err(finding) => {
            let mut findings = vec![finding.in_check(Check::Body.of(TestType::Db))];
            findings.extend(url_length_finding(TestType::Db, path, url));
            return Ok(PhaseOne::done(findings));
        }
    };
    if let Some(finding) = url_length_finding(TestType::Db, path, url) {
        return Ok(PhaseOne::done(vec![finding]));
    }
    let mut findings = Vec::new();
    let object = match &value {
        Value::Array(items) => {
            findings.push(Finding::warn(
                "Response is a JSON array. Expected JSON object (e.g. [] vs {})",
                url,
            ));
            let first = items
                .first()
                .ok_or_else(|| TfbException("list index out of range".to_owned()))?;
            if !first.is_object() {
                findings.push(Finding::fail(
                    "Response is not a JSON object or an array of JSON objects",
                    url,
                ));
                return Ok(PhaseOne::done(file_under(
                    Check::Body.of(TestType::Db),
                    findings,
                )));
            }
            first
        }
        object => object,
    };
    findings.extend(verify_world(object, url, Level::Fail)?);
    let mut findings = file_under(Check::Body.of(TestType::Db), findings);
    findings.extend(file_under(
        Check::Status.of(TestType::Db),
        status_findings(&response, url),
    ));
    findings.extend(file_under(
        Check::Headers.of(TestType::Db),
        verify_headers(&response, url, ACCEPT_JSON, ContentKind::Json).await,
    ));
    let counts = if no_problems(&findings) {
        count_spec(target, "World", url.to_owned(), 1, 1, false)
    } else {
        None
    };
    findings.extend(file_under(
        Check::ContentLength.of(TestType::Db),
        content_length_findings(&response, url),
    ));
    // The spread says something only about bodies that are otherwise right.
    if no_problems(&findings) {
        findings.extend(file_under(
            Check::IdsSpread.of(TestType::Db),
            ids_spread(url).await,
        ));
    }
    Ok(PhaseOne { findings, counts })
}

/// Strict: ids across requests are fresh random draws over the whole table.
async fn ids_spread(url: &str) -> Vec<Finding> {
    const REQUESTS: usize = 100;
    let responses = join_all((0..REQUESTS).map(|_| client::get(url, ACCEPT_JSON))).await;
    let ids: Vec<i64> = responses
        .iter()
        .filter_map(|response| response.as_ref().ok())
        .filter_map(|response| serde_json::from_slice::<Value>(&response.body).ok())
        .filter_map(|value| {
            let object = value.as_object()?;
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case("id"))?
                .1
                .as_i64()
        })
        .collect();
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    let upper_half = distinct.iter().filter(|&&id| id > 5000).count();
    // 100 uniform draws from 10000 repeat about one id (0.5 expected); halves hold ~50 each.
    if ids.len() == REQUESTS && distinct.len() >= 95 && (25..=75).contains(&upper_half) {
        Vec::new()
    } else {
        vec![
            Finding::fail(
                format!(
                    "{REQUESTS} requests gave {} ids, {} distinct, {upper_half} above 5000: ids should be fresh uniform draws from 1..10000",
                    ids.len(),
                    distinct.len()
                ),
                url,
            )
            .strict(),
        ]
    }
}

/// The per-case part of the query and update types (TFB's loop over the five cases).
async fn list_case(
    base_url: &str,
    case: &str,
    severity: Level,
    check: CheckId,
) -> Result<Vec<Finding>, Abort> {
    let url = format!("{base_url}{case}");
    let response = client::get(&url, ACCEPT_JSON).await?;
    let findings = match case.parse::<i64>() {
        Ok(number) => {
            let expected = number.clamp(1, 500) as usize;
            let mut findings = verify_world_list(&response.body, &url, expected, severity)?;
            findings.extend(verify_headers(&response, &url, ACCEPT_JSON, ContentKind::Json).await);
            findings
        }
        // TFB names the /queries route here for the update type too.
        Err(_) if response.body.is_empty() => vec![Finding::new(
            severity,
            format!(
                "Empty response given for stringy `queries` parameter {case}\nSuggestion: modify your /queries \
                 route to handle this case (this will be a failure in future rounds, please fix)"
            ),
            &url,
        )],
        Err(_) => {
            let mut findings = verify_world_list(&response.body, &url, 1, severity)?;
            findings.extend(verify_headers(&response, &url, ACCEPT_JSON, ContentKind::Json).await);
            findings
        }
    };
    Ok(file_under(check, findings))
}

async fn bare_url(test_type: TestType, url: &str) -> Result<Vec<Finding>, Abort> {
    let response = client::get(url, ACCEPT_JSON).await?;
    let mut findings = status_findings(&response, url);
    findings.extend(verify_headers(&response, url, ACCEPT_JSON, ContentKind::Json).await);
    Ok(file_under(Check::BareUrl.of(test_type), findings))
}

/// What the query and update types share after their cases ran, as in TFB: the path-length
/// rule, the bare URL, and one pass per case when nothing was wrong.
fn list_type_findings(
    test_type: TestType,
    url: &str,
    path: &str,
    cases: Vec<Result<Vec<Finding>, Abort>>,
    bare: Result<Vec<Finding>, Abort>,
) -> Result<Vec<Finding>, Abort> {
    let mut findings = Vec::new();
    for case in cases {
        findings.extend(case?);
    }
    findings.extend(url_length_finding(test_type, path, url));
    findings.extend(bare?);
    if findings.is_empty() {
        findings = QUERY_CASES
            .iter()
            .map(|(case, _, name)| {
                Finding::pass("", &format!("{url}{case}")).in_check(name.of(test_type))
            })
            .collect();
    }
    Ok(findings)
}

async fn query(target: &Target, url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let cases =
        join_all(QUERY_CASES.iter().map(|(case, severity, name)| {
            list_case(url, case, *severity, name.of(TestType::Query))
        }));
    let (cases, bare) = tokio::join!(cases, bare_url(TestType::Query, url));
    let findings = list_type_findings(TestType::Query, url, path, cases, bare)?;
    let counts = count_spec(target, "world", format!("{url}20"), 20, 20, false);
    Ok(PhaseOne { findings, counts })
}

/// TFB's `cached-query`: the five cases and the bare URL of `query`, with no database counts (its
/// test type reads no `database` key); whether rows come from a cache is checked later, strictly.
async fn cached_query(url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let cases = join_all(QUERY_CASES.iter().map(|(case, severity, name)| {
        list_case(url, case, *severity, name.of(TestType::CachedQuery))
    }));
    let (cases, bare) = tokio::join!(cases, bare_url(TestType::CachedQuery, url));
    let findings = list_type_findings(TestType::CachedQuery, url, path, cases, bare)?;
    Ok(PhaseOne::done(findings))
}

async fn update(target: &Target, url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let before = match &target.database_url {
        Some(database_url) => Some(db_counts::world_snapshot(database_url).await),
        None => None,
    };
    let before = &before;
    let case_checks = QUERY_CASES.iter().map(|(case, severity, name)| async move {
        let findings = list_case(url, case, *severity, name.of(TestType::Update)).await?;
        if *case != "501" {
            return Ok::<_, Abort>(findings);
        }
        let mut findings = findings;
        findings.extend(file_under(
            Check::RowsChanged.of(TestType::Update),
            rows_changed(target, before.as_ref(), &format!("{url}{case}")).await,
        ));
        Ok(findings)
    });
    let (cases, bare) = tokio::join!(join_all(case_checks), bare_url(TestType::Update, url));
    let findings = list_type_findings(TestType::Update, url, path, cases, bare)?;
    let counts = count_spec(target, "world", format!("{url}20"), 21, 20, true);
    Ok(PhaseOne { findings, counts })
}

/// TFB's update check after the `501` case: enough rows of `"World"` (or else `world`) changed.
async fn rows_changed(
    target: &Target,
    before: Option<&Result<[HashMap<i32, i32>; 2], tokio_postgres::Error>>,
    url: &str,
) -> Vec<Finding> {
    let (Some(database_url), Some(before)) = (&target.database_url, before) else {
        return vec![
            Finding::warn(
                "No database URL given: whether rows were updated is not checked",
                url,
            )
            .strict(),
        ];
    };
    let after = db_counts::world_snapshot(database_url).await;
    let (before, after) = match (before.as_ref(), after.as_ref()) {
        (Ok(before), Ok(after)) => (before, after),
        (Err(error), _) | (_, Err(error)) => {
            return vec![Finding::fail(
                format!("Could not read the World tables: {error}"),
                url,
            )];
        }
    };
    let changed = |index: usize| {
        (1..=10_000)
            .filter(|id| before[index].get(id) != after[index].get(id))
            .count()
    };
    let updated = match changed(0) {
        0 => changed(1),
        count => count,
    };
    if updated == 0 {
        vec![Finding::fail("No items were updated in the database.", url)]
    } else if updated <= 450 {
        vec![Finding::fail(
            format!(
                "Only {updated} items were updated in the database out of roughly 500 expected."
            ),
            url,
        )]
    } else if updated <= 475 {
        vec![Finding::warn(
            format!(
                "There may have been an error updating the database. Only {updated} items were updated in the database \
                 out of the roughly 500 expected."
            ),
            url,
        )]
    } else {
        Vec::new()
    }
}

async fn fortune_type(target: &Target, url: &str, path: &str) -> Result<PhaseOne, Abort> {
    let response = client::get(url, ACCEPT_HTML).await?;
    if response.body.is_empty() {
        let mut findings =
            vec![Finding::fail("Empty response", url).in_check(Check::Page.of(TestType::Fortune))];
        findings.extend(url_length_finding(TestType::Fortune, path, url));
        return Ok(PhaseOne::done(findings));
    }
    if let Some(finding) = url_length_finding(TestType::Fortune, path, url) {
        return Ok(PhaseOne::done(vec![finding]));
    }
    let page = fortune::verify_page(&response.body, url).map_err(TfbException)?;
    if !page.is_empty() {
        return Ok(PhaseOne::done(file_under(
            Check::Page.of(TestType::Fortune),
            page,
        )));
    }
    let mut findings = file_under(
        Check::Headers.of(TestType::Fortune),
        verify_headers(&response, url, ACCEPT_HTML, ContentKind::Html).await,
    );
    // TFB never read the fortunes status: a right page answered 404 passed.
    let status: Vec<Finding> = status_findings(&response, url)
        .into_iter()
        .map(Finding::strict)
        .collect();
    let counts = if no_problems(&findings) {
        count_spec(target, "fortune", url.to_owned(), 1, 12, false)
    } else {
        None
    };
    findings.extend(file_under(Check::Status.of(TestType::Fortune), status));
    findings.extend(file_under(
        Check::ContentLength.of(TestType::Fortune),
        content_length_findings(&response, url),
    ));
    Ok(PhaseOne { findings, counts })
}

/// Strict, after the counts: the rows `/updates` reports are the rows stored afterwards.
pub async fn reported_rows_are_stored(target: &Target, path: &str) -> Vec<Finding> {
    let url = format!("{}{path}20", target.base_url);
    let Some(database_url) = &target.database_url else {
        return vec![
            Finding::warn(
                "No database URL given: whether the reported rows were stored was not checked",
                &url,
            )
            .strict(),
        ];
    };
    let outcome = async {
        let response = client::get(&url, ACCEPT_JSON)
            .await
            .map_err(|error| error.to_string())?;
        let rows: Vec<Value> =
            serde_json::from_slice(&response.body).map_err(|error| error.to_string())?;
        let snapshot = db_counts::world_snapshot(database_url)
            .await
            .map_err(|error| error.to_string())?;
        for row in rows {
            let field = |name: &str| {
                row.as_object()
                    .and_then(|object| {
                        object
                            .iter()
                            .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    })
                    .and_then(|(_, value)| value.as_i64())
            };
            let (Some(id), Some(number)) = (field("id"), field("randomNumber")) else {
                return Err(format!("a row without integer id and randomNumber: {row}"));
            };
            let id = id as i32;
            let stored = [snapshot[0].get(&id), snapshot[1].get(&id)];
            if !stored.contains(&Some(&(number as i32))) {
                return Err(format!(
                    "it reported row {id} = {number}, but the tables hold {stored:?}"
                ));
            }
        }
        Ok(())
    };
    match outcome.await {
        Ok(()) => Vec::new(),
        Err(problem) => vec![
            Finding::fail(
                format!("Reported rows are not the stored rows: {problem}"),
                &url,
            )
            .strict(),
        ],
    }
}
