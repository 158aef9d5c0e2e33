//! TFB's database-side check (`verify_queries_count`): counters from `pg_stat_statements`
//! before and after a burst of concurrent requests (TFB used `siege -c 512 -r 1`), compared with
//! what the test type must have executed, with TFB's margins and bulk-update detection; and the
//! World snapshots the update checks compare.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::Barrier, task::JoinSet};
use tokio_postgres::NoTls;

use crate::{
    client,
    report::{Finding, Level},
};

/// TFB gave siege this long for the whole burst.
const BURST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a burst waits for the database to become quiet before giving up.
const QUIET_PATIENCE: Duration = Duration::from_secs(30);
/// Counters that do not move for this long, with no statement running, make a quiet database.
const QUIET_STILLNESS: Duration = Duration::from_millis(500);
/// A wait longer than this means someone was still working when the burst was due (strict warn).
const BUSY_WARNING: Duration = Duration::from_secs(1);
/// Both TFB tables: whatever runs on either would be counted in some window.
const BOTH_TABLES: &str = "[[:<:]](world|fortune)[[:>:]]";
/// TFB's PostgreSQL margin: it only changes the numbers printed for rows.
const POSTGRES_MARGIN: f64 = 1.011;

/// `id → randomNumber` for both World tables, as TFB snapshots them.
pub async fn world_snapshot(
    database_url: &str,
) -> Result<[HashMap<i32, i32>; 2], tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut tables = [HashMap::new(), HashMap::new()];
    for (index, table) in ["\"World\"", "world"].iter().enumerate() {
        for row in client
            .query(&format!("SELECT id, randomnumber FROM {table}"), &[])
            .await?
        {
            tables[index].insert(row.get(0), row.get(1));
        }
    }
    Ok(tables)
}

/// What one test type's burst must execute.
#[derive(Debug, Clone)]
pub struct CountSpec {
    /// TFB's table regex: `World`, `world` or `fortune`.
    pub table: &'static str,
    pub url: String,
    pub accept: &'static str,
    pub concurrency: usize,
    pub expected_queries: u64,
    pub expected_rows: u64,
    /// Also count updated rows and detect bulk updates (the updates test).
    pub updates: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    queries: i64,
    rows: i64,
    rows_updated: i64,
}

async fn read_counters(
    client: &tokio_postgres::Client,
    table: &str,
) -> Result<Counters, tokio_postgres::Error> {
    let pattern = format!("[[:<:]]{table}[[:>:]]");
    // Each pattern is a parameter, so these statements' own text never names the table.
    let queries = client
        .query_one(
            "SELECT coalesce(SUM(calls), 0)::int8 FROM pg_stat_statements WHERE query ~* $1",
            &[&pattern],
        )
        .await?;
    let rows = client
        .query_one(
            "SELECT coalesce(SUM(rows), 0)::int8 FROM pg_stat_statements WHERE query ~* $1 AND query ~* 'select'",
            &[&pattern],
        )
        .await?;
    let updated = client
        .query_one(
            "SELECT coalesce(SUM(rows), 0)::int8 FROM pg_stat_statements WHERE query ~* $1 AND query ~* 'update'",
            &[&pattern],
        )
        .await?;
    Ok(Counters {
        queries: queries.get(0),
        rows: rows.get(0),
        rows_updated: updated.get(0),
    })
}

/// Requests of one burst counted by cause: siege only counted its failed transactions, but a
/// user fixing a server needs to know whether it answered 503, reset connections or never
/// answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Causes(BTreeMap<String, usize>);

impl Causes {
    fn record(&mut self, cause: String) {
        *self.0.entry(cause).or_default() += 1;
    }

    pub fn count(&self) -> usize {
        self.0.values().sum()
    }

    /// The causes, most frequent first.
    fn list(&self) -> String {
        let mut causes: Vec<_> = self.0.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let causes: Vec<_> = causes
            .into_iter()
            .map(|(cause, count)| format!("{count} \u{d7} {cause}"))
            .collect();
        causes.join("; ")
    }
}

/// What one burst's requests came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BurstOutcome {
    /// siege's failed transactions, the number in TFB's message.
    pub failed: Causes,
    /// Transactions siege let through that were not a whole 200 response (a 404, a 510, a body
    /// cut short): no failure for TFB, a strict one here.
    pub not_ok: Causes,
}

impl BurstOutcome {
    /// TFB's message, then the causes.
    fn failed_message(&self) -> String {
        format!(
            "{} failed transactions. Causes (not in TFB's message): {}.",
            self.failed.count(),
            self.failed.list()
        )
    }

    fn not_ok_message(&self) -> String {
        format!(
            "{} responses of the burst were not a whole 200 response, which siege did not count \
             as failed transactions (stricter than TFB): {}.",
            self.not_ok.count(),
            self.not_ok.list()
        )
    }
}

/// Whether siege 4.0.7, which TFB's bursts ran, counted a response with this status as a failed
/// transaction. Its browser gives up on 408, 418 and 500-509 only; every other status, 404 and
/// 510 included, is a transaction that went through (siege's "availability" counts them
/// separately, but TFB read only "Failed transactions").
pub fn siege_fails_status(status: u16) -> bool {
    matches!(status, 408 | 418 | 500..=509)
}

/// One request of a burst as siege saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Transaction {
    Whole200,
    /// Through for siege, but not a whole 200 response; the cause.
    ThroughNotOk(String),
    /// A failed transaction for siege; the cause.
    Failed(String),
}

/// How siege counted one request. A response whose head arrived but whose body was cut short
/// went through for siege, by its status alone (`zero-data-ok` is on by default and TFB's
/// `.siegerc` leaves it so).
fn siege_transaction(outcome: Result<client::Response, client::FetchError>) -> Transaction {
    let (status, lost_body) = match outcome {
        Ok(response) => (response.status, None),
        Err(client::FetchError::BodyLost { status, detail }) => (status, Some(detail)),
        Err(error) => return Transaction::Failed(error.to_string()),
    };
    if siege_fails_status(status) {
        return Transaction::Failed(format!("answered HTTP {status}"));
    }
    match lost_body {
        Some(detail) => Transaction::ThroughNotOk(format!("a {status} head, then {detail}")),
        None if status == 200 => Transaction::Whole200,
        None => Transaction::ThroughNotOk(format!("answered HTTP {status}")),
    }
}

/// Sends `concurrency` requests at once, one per connection, and counts them the way siege does
/// ([`siege_transaction`]). `None` when the burst timed out (TFB then counted no failures).
///
/// The server's name is resolved once for the whole burst (each request resolving it again
/// only tests the name service); if that fails, each request tries on its own.
async fn burst(url: &str, accept: &'static str, concurrency: usize) -> Option<BurstOutcome> {
    let address = client::resolve(url).await.ok();
    let start = Arc::new(Barrier::new(concurrency));
    let mut requests = JoinSet::new();
    for _ in 0..concurrency {
        let (start, url) = (Arc::clone(&start), url.to_owned());
        requests.spawn(async move {
            start.wait().await;
            siege_transaction(client::get_within(&url, accept, address, BURST_TIMEOUT).await)
        });
    }
    let collect = async {
        let mut outcome = BurstOutcome::default();
        while let Some(result) = requests.join_next().await {
            match result {
                Ok(Transaction::Whole200) => {}
                Ok(Transaction::ThroughNotOk(cause)) => outcome.not_ok.record(cause),
                Ok(Transaction::Failed(cause)) => outcome.failed.record(cause),
                Err(error) => outcome
                    .failed
                    .record(format!("the request task failed: {error}")),
            }
        }
        outcome
    };
    tokio::time::timeout(BURST_TIMEOUT, collect).await.ok()
}

/// The findings of one type's counts, and how long its burst waited for a quiet database.
#[derive(Debug, Clone, Default)]
pub struct Counted {
    pub findings: Vec<Finding>,
    pub quiet_wait: Duration,
}

/// What the database was doing while a burst waited for it.
struct Activity {
    /// Calls of statements on either table, all sessions.
    calls: i64,
    /// Statements running right now in other sessions of this database, whatever they touch: a
    /// server may be inside a statement of its own (a sleep, a lock wait) between two counted
    /// ones.
    running: i64,
}

async fn read_activity(client: &tokio_postgres::Client) -> Result<Activity, tokio_postgres::Error> {
    let calls = client
        .query_one(
            "SELECT coalesce(SUM(calls), 0)::int8 FROM pg_stat_statements WHERE query ~* $1",
            &[&BOTH_TABLES],
        )
        .await?;
    let running = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
             AND pid <> pg_backend_pid() AND datname = current_database()",
            &[],
        )
        .await?;
    Ok(Activity {
        calls: calls.get(0),
        running: running.get(0),
    })
}

/// Waits, up to [`QUIET_PATIENCE`], until no other session runs a statement and the tables'
/// counters stand still for [`QUIET_STILLNESS`]: a counting window must see only its own burst, not a
/// slow server still working off an earlier type's requests (TFB's slower pacing let such a
/// server drain). The error says what was still moving.
async fn wait_until_quiet(client: &tokio_postgres::Client) -> Result<Duration, String> {
    let started = tokio::time::Instant::now();
    let mut still_since = started;
    let mut last = read_activity(client)
        .await
        .map_err(|error| error.to_string())?;
    loop {
        if last.running == 0 && still_since.elapsed() >= QUIET_STILLNESS {
            return Ok(started.elapsed());
        }
        if started.elapsed() > QUIET_PATIENCE {
            return Err(format!(
                "statements were still running ({} at the last look) or being counted on world \
                 and fortune after {} s",
                last.running,
                QUIET_PATIENCE.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = read_activity(client)
            .await
            .map_err(|error| error.to_string())?;
        if now.calls != last.calls || now.running > 0 {
            still_since = tokio::time::Instant::now();
        }
        last = now;
    }
}

/// Requests of the cache check, and the rows each asks for.
const CACHE_CHECK_REQUESTS: usize = 100;
const CACHE_CHECK_ROWS: usize = 20;

/// Strict, for `cached-query` (TFB left the cache's rules unwritten): rows come from memory.
/// [`CACHE_CHECK_REQUESTS`] requests of [`CACHE_CHECK_ROWS`] rows each may cause a few statements
/// on World (a cache filled lazily, or refreshed), not one or more per request.
pub async fn served_from_cache(database_url: &str, url: &str) -> Counted {
    let url = format!("{url}{CACHE_CHECK_ROWS}");
    let outcome = async {
        let client = connect(database_url)
            .await
            .map_err(|error| error.to_string())?;
        let quiet_wait = wait_until_quiet(&client).await?;
        let before = read_counters(&client, "world")
            .await
            .map_err(|error| error.to_string())?;
        let answers = futures_util::future::join_all(
            (0..CACHE_CHECK_REQUESTS).map(|_| client::get(&url, crate::types::ACCEPT_JSON)),
        )
        .await;
        let after = read_counters(&client, "world")
            .await
            .map_err(|error| error.to_string())?;
        let answered = answers
            .iter()
            .filter(|answer| answer.as_ref().is_ok_and(|response| response.status == 200))
            .count();
        Ok::<_, String>((quiet_wait, after.queries - before.queries, answered))
    };
    match outcome.await {
        Ok((quiet_wait, statements, answered)) => {
            let findings = if statements >= CACHE_CHECK_REQUESTS as i64 {
                vec![
                    Finding::fail(
                        format!(
                            "{CACHE_CHECK_REQUESTS} requests of {CACHE_CHECK_ROWS} cached rows ran {statements} \
                             statements on world ({answered} answered 200): the rows are read from the \
                             database, not from a cache filled at start-up"
                        ),
                        &url,
                    )
                    .strict(),
                ]
            } else {
                Vec::new()
            };
            Counted {
                findings,
                quiet_wait,
            }
        }
        Err(problem) => Counted {
            findings: vec![
                Finding::warn(
                    format!("Could not check that rows come from a cache: {problem}"),
                    &url,
                )
                .strict(),
            ],
            quiet_wait: Duration::ZERO,
        },
    }
}

/// Waits for a quiet database, runs the burst and returns TFB's findings for it.
pub async fn verify_counts(database_url: &str, spec: &CountSpec, ci: bool) -> Counted {
    let url = &spec.url;
    let unreadable = |error: tokio_postgres::Error| Counted {
        findings: vec![Finding::fail(
            format!("Could not read pg_stat_statements: {error}"),
            url,
        )],
        quiet_wait: Duration::ZERO,
    };
    let client = match connect(database_url).await {
        Ok(client) => client,
        Err(error) => return unreadable(error),
    };
    let quiet_wait = match wait_until_quiet(&client).await {
        Ok(waited) => waited,
        Err(problem) => {
            return Counted {
                findings: vec![Finding::fail(
                    format!(
                        "The database never became quiet before the burst: {problem}. The counts \
                         would include statements that are not this burst's, so they were not taken."
                    ),
                    url,
                )],
                quiet_wait: QUIET_PATIENCE,
            };
        }
    };
    let mut findings = Vec::new();
    if quiet_wait > BUSY_WARNING {
        findings.push(
            Finding::warn(
                format!(
                    "The database was busy for {:.1} s before this burst: statements on world or \
                     fortune kept running after the earlier requests had been answered or given \
                     up (a server still working off a queue, or another client of the database)",
                    quiet_wait.as_secs_f64()
                ),
                url,
            )
            .strict(),
        );
    }
    let before = match read_counters(&client, spec.table).await {
        Ok(counters) => counters,
        Err(error) => return unreadable(error),
    };
    let outcome = burst(url, spec.accept, spec.concurrency)
        .await
        .unwrap_or_default();
    let after = match read_counters(&client, spec.table).await {
        Ok(counters) => counters,
        Err(error) => return unreadable(error),
    };
    findings.extend(evaluate(
        spec,
        ci,
        &outcome,
        Counters {
            queries: after.queries - before.queries,
            rows: after.rows - before.rows,
            rows_updated: after.rows_updated - before.rows_updated,
        },
    ));
    Counted {
        findings,
        quiet_wait,
    }
}

async fn connect(database_url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    Ok(client)
}

fn evaluate(spec: &CountSpec, ci: bool, outcome: &BurstOutcome, delta: Counters) -> Vec<Finding> {
    let url = &spec.url;
    let concurrency = spec.concurrency as f64;
    let mut expected_queries = spec.expected_queries as f64;
    let expected_rows = spec.expected_rows as f64;
    let mut bulk_margin = 1.0;
    if spec.updates {
        let is_bulk = expected_queries * 0.999 < delta.queries as f64
            && (delta.queries as f64) < expected_queries * 1.001;
        if is_bulk {
            bulk_margin = 1.05;
        } else {
            expected_queries = (expected_queries - concurrency) * 2.0;
        }
    }
    let queries_margin = if ci { 1.015 } else { 1.0 };
    let mut findings = Vec::new();
    if !ci && outcome.failed.count() > 0 {
        findings.push(Finding::fail(outcome.failed_message(), url));
    }
    if outcome.not_ok.count() > 0 {
        findings.push(Finding::fail(outcome.not_ok_message(), url).strict());
    }
    findings.push(count_result(
        "executed queries",
        delta.queries as f64 * queries_margin,
        delta.queries,
        expected_queries,
        url,
    ));
    findings.push(count_result(
        "rows read",
        delta.rows as f64,
        (delta.rows as f64 / POSTGRES_MARGIN) as i64,
        expected_rows,
        url,
    ));
    if spec.updates {
        findings.push(count_result(
            "rows updated",
            delta.rows_updated as f64 * bulk_margin,
            (delta.rows_updated as f64 / POSTGRES_MARGIN) as i64,
            expected_rows,
            url,
        ));
    }
    findings
}

/// TFB's `display_queries_count_result`.
fn count_result(caption: &str, result: f64, displayed: i64, expected: f64, url: &str) -> Finding {
    let expected_shown = expected as i64;
    if result > expected * 1.05 {
        Finding::new(
            Level::Warn,
            format!(
                "{displayed} {caption} in the database instead of {expected_shown} expected. This number is excessively high."
            ),
            url,
        )
    } else if result < expected {
        Finding::fail(
            format!(
                "Only {displayed} {caption} in the database out of roughly {expected_shown} expected."
            ),
            url,
        )
    } else {
        let mut title = caption.to_owned();
        title[..1].make_ascii_uppercase();
        Finding::pass(format!("{title}: {displayed}/{expected_shown}"), url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(updates: bool, queries: u64, rows: u64) -> CountSpec {
        CountSpec {
            table: "world",
            url: "/u".to_owned(),
            accept: "*/*",
            concurrency: 512,
            expected_queries: queries,
            expected_rows: rows,
            updates,
        }
    }

    fn levels(findings: &[Finding]) -> Vec<Level> {
        findings.iter().map(|finding| finding.level).collect()
    }

    fn none() -> BurstOutcome {
        BurstOutcome::default()
    }

    fn three() -> BurstOutcome {
        let mut outcome = BurstOutcome::default();
        outcome
            .failed
            .record("Connection to server timed out".to_owned());
        outcome.failed.record("answered HTTP 503".to_owned());
        outcome.failed.record("answered HTTP 503".to_owned());
        outcome
    }

    fn delta(queries: i64, rows: i64, rows_updated: i64) -> Counters {
        Counters {
            queries,
            rows,
            rows_updated,
        }
    }

    #[test]
    fn windows_match_tfb_with_default_concurrency() {
        let db = spec(false, 512, 512);
        assert_eq!(
            levels(&evaluate(&db, false, &none(), delta(512, 512, 0))),
            [Level::Pass, Level::Pass]
        );
        assert_eq!(
            levels(&evaluate(&db, false, &none(), delta(511, 512, 0))),
            [Level::Fail, Level::Pass]
        );
        assert_eq!(
            levels(&evaluate(&db, true, &none(), delta(505, 512, 0))),
            [Level::Pass, Level::Pass]
        );
        assert_eq!(
            levels(&evaluate(&db, false, &none(), delta(538, 512, 0))),
            [Level::Warn, Level::Pass]
        );
        assert_eq!(
            levels(&evaluate(&db, false, &three(), delta(512, 512, 0)))[0],
            Level::Fail
        );
        assert_eq!(
            evaluate(&db, false, &three(), delta(512, 512, 0))[0].message,
            "3 failed transactions. Causes (not in TFB's message): \
             2 \u{d7} answered HTTP 503; 1 \u{d7} Connection to server timed out."
        );
        assert_eq!(
            levels(&evaluate(&db, true, &three(), delta(512, 512, 0))),
            [Level::Pass, Level::Pass]
        );
    }

    #[test]
    fn update_counts_detect_bulk_and_per_row() {
        let update = spec(true, 10752, 10240);
        let bulk = evaluate(&update, false, &none(), delta(10752, 10240, 9800));
        assert_eq!(levels(&bulk), [Level::Pass, Level::Pass, Level::Pass]);
        let per_row = evaluate(&update, false, &none(), delta(20480, 10240, 10240));
        assert_eq!(levels(&per_row), [Level::Pass, Level::Pass, Level::Pass]);
        let two_batches = evaluate(&update, false, &none(), delta(11264, 10240, 10240));
        assert_eq!(two_batches[0].level, Level::Fail);
        assert_eq!(
            two_batches[0].message,
            "Only 11264 executed queries in the database out of roughly 20480 expected."
        );
        let select_in_update = evaluate(&update, false, &none(), delta(10752, 20480, 10240));
        assert_eq!(select_in_update[1].level, Level::Warn);
    }

    #[test]
    fn the_known_failure_message() {
        let per_row = evaluate(
            &spec(true, 10752, 10240),
            false,
            &none(),
            delta(20479, 10240, 10240),
        );
        assert_eq!(
            per_row[0].message,
            "Only 20479 executed queries in the database out of roughly 20480 expected."
        );
    }

    fn response(status: u16) -> Result<client::Response, client::FetchError> {
        Ok(client::Response {
            status,
            headers: Vec::new(),
            body: b"{}".to_vec(),
            wire_length: 2,
        })
    }

    #[test]
    fn siege_fails_only_what_its_browser_gives_up_on() {
        use Transaction::*;
        let failed = |status: u16| Failed(format!("answered HTTP {status}"));
        let through = |status: u16| ThroughNotOk(format!("answered HTTP {status}"));
        for (status, expected) in [
            (200, Whole200),
            (204, through(204)),
            (400, through(400)),
            (404, through(404)),
            (407, through(407)),
            (408, failed(408)),
            (418, failed(418)),
            (429, through(429)),
            (499, through(499)),
            (500, failed(500)),
            (503, failed(503)),
            (509, failed(509)),
            (510, through(510)),
            (599, through(599)),
        ] {
            assert_eq!(siege_transaction(response(status)), expected, "{status}");
        }
        let cut = |status| client::FetchError::BodyLost {
            status,
            detail: "the body ended".to_owned(),
        };
        assert_eq!(
            siege_transaction(Err(cut(200))),
            ThroughNotOk("a 200 head, then the body ended".to_owned())
        );
        assert_eq!(siege_transaction(Err(cut(503))), failed(503));
        assert_eq!(
            siege_transaction(Err(client::FetchError::Timeout)),
            Failed("Connection to server timed out".to_owned())
        );
    }

    #[test]
    fn responses_siege_let_through_fail_only_the_strict_verdict() {
        let db = spec(false, 512, 512);
        let mut outcome = BurstOutcome::default();
        outcome.not_ok.record("answered HTTP 404".to_owned());
        let findings = evaluate(&db, false, &outcome, delta(512, 512, 0));
        assert_eq!(levels(&findings), [Level::Fail, Level::Pass, Level::Pass]);
        assert!(findings[0].strict, "{findings:?}");
        assert!(
            findings[0].message.starts_with(
                "1 responses of the burst were not a whole 200 response, which siege did not count"
            ),
            "{}",
            findings[0].message
        );
    }
}
