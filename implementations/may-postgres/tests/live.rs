//! The client against a real PostgreSQL server: the throwaway cluster from `db-schema` (or
//! `DATABASE_URL`), loaded with TFB's schema, one per test. Tests that change authentication rules
//! or stop the server always start private clusters.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tfb_database::{Cluster, Database};
use tfb_may_postgres::{Config, Connection, Error, Param, Reconnecting, Worker};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A database of the test's own (`DATABASE_URL`, or a throwaway cluster), removed when the test
/// ends; a shared one in a static would outlive the test process's exit.
fn database() -> Database {
    Database::from_env().expect("a database for the client tests")
}

fn config(url: &str) -> Config {
    Config::from_url(url).expect("the cluster's URL parses")
}

/// Runs `body` in a coroutine, as the client expects, with a stack large enough for debug builds.
fn in_coroutine<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let builder = may::coroutine::Builder::new().stack_size(0x40000);
    // SAFETY: the coroutine owns everything it uses and is joined before returning.
    let handle = unsafe { builder.spawn(body) }.expect("spawning a coroutine");
    handle.join().expect("the coroutine finished")
}

fn connect(url: &str) -> Connection {
    Connection::connect(&config(url), TIMEOUT).expect("connecting")
}

#[test]
fn startup_settings_hold_for_the_session() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let config = config(&url).with_setting("statement_timeout", "100ms");
        let connection = Connection::connect(&config, TIMEOUT).expect("connecting");
        let sleep = connection.prepare("SELECT pg_sleep(5)::text").unwrap();
        let started = Instant::now();
        let error = connection.query(&sleep, &[]).unwrap_err();
        assert!(
            matches!(&error, Error::Database { code, .. } if code == "57014"),
            "{error:?}"
        );
        assert!(
            error.is_unavailable(),
            "a cancelled statement means try later: {error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the sleep ran to its end"
        );
        let world = connection
            .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
            .unwrap();
        let rows = connection.query(&world, &[Param::Int4(7)]).unwrap();
        assert_eq!(
            rows.one().unwrap().get_i32(0).unwrap(),
            7,
            "the connection still serves"
        );
    });
}

#[test]
fn an_overdue_answer_closes_the_connection() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let mut config = config(&url);
        config.answer_timeout = Some(Duration::from_millis(200));
        let connection = Connection::connect(&config, TIMEOUT).expect("connecting");
        let sleep = connection.prepare("SELECT pg_sleep(5)::text").unwrap();
        let started = Instant::now();
        let error = connection.query(&sleep, &[]).unwrap_err();
        assert!(matches!(error, Error::Closed(_)), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for the answer after all"
        );
        assert!(
            connection.is_closed(),
            "a stalled connection must be given up"
        );
        let error = connection.query(&sleep, &[]).unwrap_err();
        assert!(matches!(error, Error::Closed(_)), "{error:?}");
    });
}

/// A connection placed on each of three workers (most of them on a socket renumbered to get
/// there) prepares, queries and pipelines like any other.
#[test]
fn connections_placed_on_a_worker_serve() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        for index in 0..3 {
            let mut config = config(&url);
            config.worker = Some(Worker { index, count: 3 });
            let connection = Connection::connect(&config, TIMEOUT).expect("connecting");
            let world = connection
                .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
                .unwrap();
            let results = connection
                .query_pipelined(&world, (1..=20).map(|id| [Param::Int4(id)]))
                .unwrap();
            let ids: Vec<i32> = results
                .iter()
                .map(|rows| rows.one().unwrap().get_i32(0).unwrap())
                .collect();
            assert_eq!(ids, (1..=20).collect::<Vec<_>>(), "worker {index}");
        }
    });
}

#[test]
fn prepared_statements_report_types_and_rows() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = connect(&url);
        let world = connection
            .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
            .unwrap();
        assert_eq!(world.columns(), 2);
        let rows = connection.query(&world, &[Param::Int4(42)]).unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.one().unwrap();
        assert_eq!(row.get_i32(0).unwrap(), 42);
        assert!((1..=10_000).contains(&row.get_i32(1).unwrap()));

        let fortunes = connection
            .prepare("SELECT id, message FROM fortune")
            .unwrap();
        let rows = connection.query(&fortunes, &[]).unwrap();
        assert_eq!(rows.len(), 12);
        let messages: Vec<&str> = rows.iter().map(|row| row.get_str(1).unwrap()).collect();
        assert!(messages.contains(&"フレームワークのベンチマーク"));
        assert!(messages.contains(
            &"<script>alert(\"This should not be displayed in a browser alert box.\");</script>"
        ));
    });
}

#[test]
fn array_parameters_and_affected_rows() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = connect(&url);
        let update = connection
            .prepare(
                "UPDATE world SET randomnumber = new.randomnumber \
                 FROM UNNEST($1::int4[], $2::int4[]) AS new(id, randomnumber) \
                 WHERE world.id = new.id",
            )
            .unwrap();
        let ids = [9_001, 9_002, 9_003];
        let numbers = [11, 22, 33];
        let rows = connection
            .query(
                &update,
                &[Param::Int4Array(&ids), Param::Int4Array(&numbers)],
            )
            .unwrap();
        assert_eq!((rows.len(), rows.affected()), (0, 3));
        let select = connection
            .prepare("SELECT randomnumber FROM world WHERE id = $1")
            .unwrap();
        let stored: Vec<i32> = connection
            .query_pipelined(&select, ids.map(|id| [Param::Int4(id)]))
            .unwrap()
            .iter()
            .map(|rows| rows.one().unwrap().get_i32(0).unwrap())
            .collect();
        assert_eq!(stored, numbers);
    });
}

/// Statements submitted one after another run in that order, whatever order their answers are
/// read in: the reads submitted before an UPDATE see the old values, those after it the new. A
/// submission dropped unread leaves the connection usable.
#[test]
fn submitted_statements_run_in_order() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = connect(&url);
        let select = connection
            .prepare("SELECT randomnumber FROM world WHERE id = $1")
            .unwrap();
        let update = connection
            .prepare("UPDATE world SET randomnumber = $2 WHERE id = $1")
            .unwrap();
        let read = |rows: Vec<tfb_may_postgres::Rows>| -> Vec<i32> {
            rows.iter()
                .map(|rows| rows.one().unwrap().get_i32(0).unwrap())
                .collect()
        };
        let old = read(
            connection
                .query_pipelined(&select, [[Param::Int4(77)]])
                .unwrap(),
        );
        let new = if old[0] == 1 { 2 } else { 1 };
        let before = connection.submit(&select, [[Param::Int4(77)]]).unwrap();
        let write = connection
            .submit(&update, [[Param::Int4(77), Param::Int4(new)]])
            .unwrap();
        let after = connection
            .submit(&select, [[Param::Int4(77)], [Param::Int4(77)]])
            .unwrap();
        assert_eq!(read(after.wait().unwrap()), [new, new]);
        assert_eq!(write.wait().unwrap()[0].affected(), 1);
        assert_eq!(read(before.wait().unwrap()), old);
        drop(connection.submit(&select, [[Param::Int4(1)]]).unwrap());
        assert_eq!(
            read(
                connection
                    .query_pipelined(&select, [[Param::Int4(77)]])
                    .unwrap()
            ),
            [new]
        );
        assert!(
            connection
                .submit(&select, std::iter::empty::<[Param; 1]>())
                .unwrap()
                .wait()
                .unwrap()
                .is_empty()
        );
    });
}

/// Many coroutines share one connection, each with a batch of statements in flight; every
/// response must reach the coroutine (and the position) that asked for it.
#[test]
fn concurrent_pipelines_get_their_own_rows() {
    let database = database();
    let url = database.url();
    let connection = Arc::new(in_coroutine(move || connect(&url)));
    let statement = {
        let connection = Arc::clone(&connection);
        in_coroutine(move || {
            connection
                .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
                .unwrap()
        })
    };
    let workers: Vec<_> = (0..200)
        .map(|worker| {
            let connection = Arc::clone(&connection);
            let statement = statement.clone();
            let builder = may::coroutine::Builder::new().stack_size(0x40000);
            // SAFETY: the coroutine owns its Arcs and is joined below.
            unsafe {
                builder.spawn(move || {
                    for round in 0..5 {
                        let ids: Vec<i32> = (0..20)
                            .map(|i| 1 + (worker * 97 + round * 20 + i) % 10_000)
                            .collect();
                        let results = connection
                            .query_pipelined(&statement, ids.iter().map(|&id| [Param::Int4(id)]))
                            .unwrap();
                        let got: Vec<i32> = results
                            .iter()
                            .map(|rows| rows.one().unwrap().get_i32(0).unwrap())
                            .collect();
                        assert_eq!(got, ids, "worker {worker} round {round}");
                    }
                })
            }
            .unwrap()
        })
        .collect();
    for worker in workers {
        worker.join().expect("every worker got its own rows");
    }
}

/// Each statement carries its own Sync: a failing statement in a batch does not cancel the
/// statements after it, as it would if the batch shared one Sync.
#[test]
fn one_sync_per_statement_isolates_failures() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = connect(&url);
        let create = connection
            .prepare("CREATE TEMPORARY SEQUENCE client_probe")
            .unwrap();
        connection.query(&create, &[]).unwrap();
        let divide = connection
            .prepare("SELECT (nextval('client_probe') / $1::int4)::int4")
            .unwrap();
        let error = connection
            .query_pipelined(
                &divide,
                [[Param::Int4(1)], [Param::Int4(0)], [Param::Int4(1)]],
            )
            .unwrap_err();
        assert!(
            matches!(&error, Error::Database { code, .. } if code == "22012"),
            "{error}"
        );
        let current = connection
            .prepare("SELECT currval('client_probe')::int4")
            .unwrap();
        let calls = connection
            .query(&current, &[])
            .unwrap()
            .one()
            .unwrap()
            .get_i32(0)
            .unwrap();
        assert_eq!(calls, 3, "the statement after the failing one ran too");
    });
}

#[test]
fn errors_say_what_went_wrong() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = connect(&url);
        let error = connection.prepare("SELEC 1").unwrap_err();
        assert!(
            matches!(&error, Error::Database { code, message } if code == "42601" && message.contains("syntax error")),
            "{error}"
        );
        let statement = connection
            .prepare("SELECT id, message FROM fortune WHERE id = $1")
            .unwrap();
        let error = connection.query(&statement, &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "type mismatch: statement takes 1 parameters, got 0"
        );
        let error = connection
            .query(&statement, &[Param::Int4Array(&[1])])
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "type mismatch: parameter $1 is int4, got int4[]"
        );
        let rows = connection.query(&statement, &[Param::Int4(1)]).unwrap();
        let row = rows.one().unwrap();
        assert_eq!(
            row.get_str(0).unwrap_err().to_string(),
            "type mismatch: column 0 is int4, not text"
        );
        assert_eq!(
            row.get_i32(2).unwrap_err().to_string(),
            "type mismatch: column 2 asked for, the row has 2"
        );
        // After all that, the connection still serves.
        assert_eq!(
            row.get_str(1).unwrap(),
            "fortune: No such file or directory"
        );
        assert!(!connection.is_closed());
    });
}

#[test]
fn authenticates_with_scram_md5_and_password() {
    let cluster = Cluster::start().expect("a private cluster");
    let admin_url = cluster.url();
    let url_for = {
        let base = config(&admin_url);
        move |user: &str, password: &str| {
            format!(
                "postgres://{user}:{password}@{}:{}/{}",
                base.host, base.port, base.database
            )
        }
    };
    for (user, method) in [("md5_user", "md5"), ("clear_user", "password")] {
        cluster
            .prepend_hba_rule(&format!("host all {user} 127.0.0.1/32 {method}"))
            .unwrap();
    }
    let admin = admin_url.clone();
    in_coroutine(move || {
        let connection = connect(&admin);
        for sql in [
            "SET password_encryption = 'md5'",
            "CREATE ROLE md5_user LOGIN PASSWORD 'md5 secret'",
            "SET password_encryption = 'scram-sha-256'",
            "CREATE ROLE clear_user LOGIN PASSWORD 'clear secret'",
            "SELECT pg_reload_conf()",
        ] {
            let statement = connection.prepare(sql).unwrap();
            connection.query(&statement, &[]).unwrap();
        }
    });
    let cases = [
        (url_for("benchmarkdbuser", "benchmarkdbpass"), None),
        (url_for("md5_user", "md5%20secret"), None),
        (url_for("clear_user", "clear%20secret"), None),
        (
            url_for("benchmarkdbuser", "wrong"),
            Some("password authentication failed"),
        ),
        (
            url_for("md5_user", "wrong"),
            Some("password authentication failed"),
        ),
    ];
    for (url, expected_error) in cases {
        let result = in_coroutine({
            let url = url.clone();
            move || {
                Connection::connect(&config(&url), TIMEOUT).map(|connection| connection.is_closed())
            }
        });
        match (result, expected_error) {
            (Ok(closed), None) => assert!(!closed, "{url}"),
            (Err(Error::Authentication(message)), Some(expected)) => {
                assert!(message.contains(expected), "{url}: {message}")
            }
            (other, _) => panic!("{url}: unexpected {other:?}"),
        }
    }
}

fn backend_pid(connection: &Connection) -> i32 {
    let statement = connection.prepare("SELECT pg_backend_pid()").unwrap();
    connection
        .query(&statement, &[])
        .unwrap()
        .one()
        .unwrap()
        .get_i32(0)
        .unwrap()
}

fn terminate(url: &str, pid: i32) {
    let admin = connect(url);
    let statement = admin
        .prepare("SELECT pg_terminate_backend($1)::int4")
        .unwrap();
    admin.query(&statement, &[Param::Int4(pid)]).unwrap();
}

/// Returns once backend `pid` sleeps in `pg_sleep`: its statement is in flight, not queued.
fn wait_until_sleeping(url: &str, pid: i32) {
    // Only a statement that never reaches the server comes near it.
    const PATIENCE: Duration = Duration::from_secs(60);
    let observer = connect(url);
    let sleeping = observer
        .prepare(
            "SELECT count(*)::int4 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'",
        )
        .unwrap();
    let started = Instant::now();
    while observer
        .query(&sleeping, &[Param::Int4(pid)])
        .unwrap()
        .one()
        .unwrap()
        .get_i32(0)
        .unwrap()
        == 0
    {
        assert!(
            started.elapsed() < PATIENCE,
            "backend {pid} never started its pg_sleep"
        );
        may::coroutine::sleep(Duration::from_millis(10));
    }
}

/// A connection killed on the server side fails the statement in flight at once, says why, and
/// fails later statements too instead of hanging.
#[test]
fn a_dropped_connection_fails_fast_and_clearly() {
    let database = database();
    let url = database.url();
    in_coroutine(move || {
        let connection = Arc::new(connect(&url));
        let pid = backend_pid(&connection);
        let slow = connection
            .prepare("SELECT 1::int4 FROM pg_sleep(60)")
            .unwrap();
        let in_flight = {
            let connection = Arc::clone(&connection);
            let slow = slow.clone();
            let builder = may::coroutine::Builder::new().stack_size(0x40000);
            // SAFETY: the coroutine owns its Arc and is joined below.
            unsafe { builder.spawn(move || connection.query(&slow, &[]).map(|rows| rows.len())) }
                .unwrap()
        };
        wait_until_sleeping(&url, pid);
        let started = Instant::now();
        terminate(&url, pid);
        let error = in_flight.join().unwrap().unwrap_err();
        // Half the statement's own length: it failed because its backend went, however slow
        // the machine.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "failed only after {:?}",
            started.elapsed()
        );
        assert!(error.is_unavailable(), "{error}");
        assert!(
            error.to_string().contains("terminating connection"),
            "{error}"
        );
        assert!(connection.is_closed());
        let later = connection.query(&slow, &[]).unwrap_err();
        assert!(matches!(later, Error::Closed(_)), "{later}");
    });
}

#[test]
fn reconnects_after_a_drop_and_after_a_restart() {
    let mut cluster = Cluster::start().expect("a private cluster");
    let url = cluster.url();
    let reconnecting = Arc::new(Reconnecting::new(
        config(&url),
        Duration::from_secs(1),
        Duration::from_millis(200),
        |connection| connection.prepare("SELECT pg_backend_pid()"),
    ));
    let pid_now = {
        let reconnecting = Arc::clone(&reconnecting);
        move || {
            let reconnecting = Arc::clone(&reconnecting);
            in_coroutine(move || {
                let session = reconnecting.session()?;
                let rows = session.connection.query(&session.statements, &[])?;
                rows.one()?.get_i32(0)
            })
        }
    };
    let first = pid_now().unwrap();
    assert_eq!(
        pid_now().unwrap(),
        first,
        "the session is reused while it lives"
    );

    // Dropped by the server: the next call fails, the one after reconnects.
    in_coroutine({
        let url = url.clone();
        move || terminate(&url, first)
    });
    std::thread::sleep(Duration::from_millis(100));
    let second = match pid_now() {
        Ok(pid) => pid,
        Err(error) => {
            assert!(error.is_unavailable(), "{error}");
            pid_now().unwrap()
        }
    };
    assert_ne!(second, first);

    // The server goes away: calls fail fast, then within the back-off without trying again.
    cluster.stop().unwrap();
    let started = Instant::now();
    let error = pid_now().unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    let error = pid_now().unwrap_err();
    assert!(error.is_unavailable(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    // And back: served again once the back-off has passed.
    cluster.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let third = loop {
        match pid_now() {
            Ok(pid) => break pid,
            Err(error) if Instant::now() < deadline => {
                assert!(error.is_unavailable(), "{error}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("not back 5 s after the restart: {error}"),
        }
    };
    assert_ne!(third, second);
}

#[test]
fn connecting_to_nothing_fails_within_the_timeout() {
    // A port nothing listens on, then an address that does not answer at all.
    for (url, timeout) in [
        ("postgres://u:p@127.0.0.1:1/d", Duration::from_secs(1)),
        (
            "postgres://u:p@10.255.255.1:5432/d",
            Duration::from_millis(300),
        ),
    ] {
        let started = Instant::now();
        let result = in_coroutine(move || Connection::connect(&config(url), timeout).map(drop));
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Connect(_)), "{url}: {error}");
        assert!(
            started.elapsed() < timeout + Duration::from_millis(500),
            "{url}: {:?}",
            started.elapsed()
        );
    }
}
