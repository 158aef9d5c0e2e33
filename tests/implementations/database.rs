//! The server against its database: TFB's full verification and exact statement counts on a
//! private cluster, and surviving the database stopping, stalling, locking a table and
//! restarting.

use super::*;

/// Runs the conformance crate's full verification (TFB's, with C = 512, plus the strict checks)
/// against this test on a private cluster, so the statement counts see no other traffic. Our
/// reference implementations must pass it without a single warn.
pub(crate) fn tfb_verification(target: &Target) -> CheckResult {
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
                finding.level,
                finding.check_name(),
                finding.url,
                finding.message
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
pub(crate) const BURST: usize = 64;

/// On a private cluster, counts in `pg_stat_statements` what a burst of concurrent requests
/// executed, the way TFB's verifier does, but exactly: one SELECT per row read, one query for
/// the fortunes, for updates one SELECT per row plus exactly one UPDATE per request, and none for
/// cached queries once the cache is filled.
pub(crate) fn statement_counts(target: &Target) -> CheckResult {
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
pub(crate) struct Counters {
    select_calls: i64,
    rows_read: i64,
    update_calls: i64,
    rows_updated: i64,
}

/// TFB's filters: the table as a whole word anywhere in the statement, then `select` or `update`
/// as substrings. The patterns are literals, which pg_stat_statements stores as `$1`, so these
/// queries never count themselves.
pub(crate) fn statement_counters(
    database: &mut postgres::Client,
    table: &str,
) -> Result<Counters, String> {
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
pub(crate) fn burst(address: SocketAddr, url: &str) -> CheckResult {
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
pub(crate) const PROMPT_FAILURE: Duration = Duration::from_secs(3);

/// How long a server may take to serve again once PostgreSQL is back; servers retry every 200 ms,
/// so only one that never reconnects comes near it.
pub(crate) const RECOVERY_PATIENCE: Duration = Duration::from_secs(30);

/// Every database URL of every test of the implementation, `queries` ones with a count.
pub(crate) fn database_paths(target: &Target) -> Vec<String> {
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
pub(crate) fn short_server_error(path: &str, situation: &str, response: &Response) -> CheckResult {
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
pub(crate) fn served_again(address: SocketAddr, path: &str, outage: &str) -> CheckResult {
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

/// A private cluster, a proxy in front of it that can stall, and the database URL through the
/// proxy. The cluster lives as long as the first of the three.
pub(crate) fn cluster_behind_a_proxy() -> Result<(Cluster, StallingProxy, String), String> {
    let cluster = Cluster::start().map_err(|error| format!("{error:#}"))?;
    let proxy = StallingProxy::start(SocketAddr::from(([127, 0, 0, 1], cluster.port())))
        .map_err(|error| format!("starting the proxy: {error}"))?;
    let mut url = url::Url::parse(&cluster.url()).map_err(|error| error.to_string())?;
    url.set_port(Some(proxy.address().port()))
        .map_err(|()| "the cluster's URL takes no port".to_owned())?;
    Ok((cluster, proxy, url.to_string()))
}

/// The network to the database stops forwarding, connections left open: every database request
/// gets a short 5xx instead of waiting as long as the stall does, and once the network is back
/// the server serves again.
pub(crate) fn database_stall_is_survived(target: &Target) -> CheckResult {
    let (_cluster, proxy, through_proxy) = cluster_behind_a_proxy()?;
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
pub(crate) fn locked_table_holds_only_updates(target: &Target) -> CheckResult {
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
pub(crate) fn wait_for_lock_waiters(observer: &mut postgres::Client) -> CheckResult {
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

pub(crate) fn database_restart_is_survived(target: &Target) -> CheckResult {
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
