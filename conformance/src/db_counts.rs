//! TFB's database-side check (`verify_queries_count`): counters from `pg_stat_statements`
//! before and after a burst of concurrent requests (TFB used `siege -c 512 -r 1`), compared with
//! what the test type must have executed, with TFB's margins and bulk-update detection.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::{sync::Barrier, task::JoinSet};
use tokio_postgres::NoTls;

use crate::{
    client,
    report::{Finding, Level},
};

/// TFB gave siege this long for the whole burst.
const BURST_TIMEOUT: Duration = Duration::from_secs(20);
/// TFB's PostgreSQL margin: it only changes the numbers printed for rows.
const POSTGRES_MARGIN: f64 = 1.011;

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

/// The failed requests of one burst, counted by cause: siege only counted them, but a user
/// fixing a server needs to know whether it answered 503, reset connections or never answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedTransactions(BTreeMap<String, usize>);

impl FailedTransactions {
    fn record(&mut self, cause: String) {
        *self.0.entry(cause).or_default() += 1;
    }

    pub fn count(&self) -> usize {
        self.0.values().sum()
    }

    /// TFB's message, then the causes, most frequent first.
    fn message(&self) -> String {
        let mut causes: Vec<_> = self.0.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let causes: Vec<_> = causes
            .into_iter()
            .map(|(cause, count)| format!("{count} \u{d7} {cause}"))
            .collect();
        format!(
            "{} failed transactions. Causes (not in TFB's message): {}.",
            self.count(),
            causes.join("; ")
        )
    }
}

/// Sends `concurrency` requests at once, one per connection, and counts the failed ones the way
/// siege does: no response, or a status of 400 or more. `None` when the burst timed out (TFB then
/// counted no failures).
///
/// The server's name is resolved once for the whole burst (each request resolving it again
/// only tests the name service); if that fails, each request tries on its own.
async fn burst(url: &str, accept: &'static str, concurrency: usize) -> Option<FailedTransactions> {
    let address = client::resolve(url).await.ok();
    let start = Arc::new(Barrier::new(concurrency));
    let mut requests = JoinSet::new();
    for _ in 0..concurrency {
        let (start, url) = (Arc::clone(&start), url.to_owned());
        requests.spawn(async move {
            start.wait().await;
            match client::get_at(&url, accept, address).await {
                Ok(response) if response.status < 400 => None,
                Ok(response) => Some(format!("answered HTTP {}", response.status)),
                Err(error) => Some(error.to_string()),
            }
        });
    }
    let collect = async {
        let mut failed = FailedTransactions::default();
        while let Some(result) = requests.join_next().await {
            match result {
                Ok(None) => {}
                Ok(Some(cause)) => failed.record(cause),
                Err(error) => failed.record(format!("the request task failed: {error}")),
            }
        }
        failed
    };
    tokio::time::timeout(BURST_TIMEOUT, collect).await.ok()
}

/// Runs the burst and returns TFB's findings for it.
pub async fn verify_counts(database_url: &str, spec: &CountSpec, ci: bool) -> Vec<Finding> {
    let url = &spec.url;
    let client = match connect(database_url).await {
        Ok(client) => client,
        Err(error) => {
            return vec![Finding::fail(
                format!("Could not read pg_stat_statements: {error}"),
                url,
            )];
        }
    };
    let before = match read_counters(&client, spec.table).await {
        Ok(counters) => counters,
        Err(error) => {
            return vec![Finding::fail(
                format!("Could not read pg_stat_statements: {error}"),
                url,
            )];
        }
    };
    let failed = burst(url, spec.accept, spec.concurrency)
        .await
        .unwrap_or_default();
    let after = match read_counters(&client, spec.table).await {
        Ok(counters) => counters,
        Err(error) => {
            return vec![Finding::fail(
                format!("Could not read pg_stat_statements: {error}"),
                url,
            )];
        }
    };
    evaluate(
        spec,
        ci,
        &failed,
        Counters {
            queries: after.queries - before.queries,
            rows: after.rows - before.rows,
            rows_updated: after.rows_updated - before.rows_updated,
        },
    )
}

async fn connect(database_url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await?;
    Ok(client)
}

fn evaluate(
    spec: &CountSpec,
    ci: bool,
    failed: &FailedTransactions,
    delta: Counters,
) -> Vec<Finding> {
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
    if !ci && failed.count() > 0 {
        findings.push(Finding::fail(failed.message(), url));
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

    fn none() -> FailedTransactions {
        FailedTransactions::default()
    }

    fn three() -> FailedTransactions {
        let mut failed = FailedTransactions::default();
        failed.record("Connection to server timed out".to_owned());
        failed.record("answered HTTP 503".to_owned());
        failed.record("answered HTTP 503".to_owned());
        failed
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
}
