//! Loads the schema into a real server (the throwaway cluster, or `DATABASE_URL`) and checks that
//! it is TFB's: tables, row counts, value ranges, every fortune byte for byte, and the settings
//! the verifier's statement counting depends on.

use postgres::{Client, NoTls};
use tfb_database::Database;

const FORTUNES: [(i32, &str); 12] = [
    (1, "fortune: No such file or directory"),
    (
        2,
        "A computer scientist is someone who fixes things that aren't broken.",
    ),
    (3, "After enough decimal places, nobody gives a damn."),
    (
        4,
        "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    ),
    (
        5,
        "A computer program does what you tell it to do, not what you want it to do.",
    ),
    (
        6,
        "Emacs is a nice operating system, but I prefer UNIX. \u{2014} Tom Christaensen",
    ),
    (7, "Any program that runs right is obsolete."),
    (
        8,
        "A list is only as strong as its weakest link. \u{2014} Donald Knuth",
    ),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (
        11,
        "<script>alert(\"This should not be displayed in a browser alert box.\");</script>",
    ),
    (
        12,
        "\u{30d5}\u{30ec}\u{30fc}\u{30e0}\u{30ef}\u{30fc}\u{30af}\u{306e}\u{30d9}\u{30f3}\u{30c1}\u{30de}\u{30fc}\u{30af}",
    ),
];

#[test]
fn schema_matches_tfb() {
    let database = Database::from_env().expect("a database to test against");
    let mut client =
        Client::connect(&database.url(), NoTls).expect("connecting as benchmarkdbuser");

    for table in ["world", "\"World\""] {
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*), min(id), max(id), count(DISTINCT id), \
                     min(randomnumber), max(randomnumber), avg(randomnumber)::float8 FROM {table}"
                ),
                &[],
            )
            .unwrap();
        let (count, min_id, max_id, distinct): (i64, i32, i32, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(
            (count, min_id, max_id, distinct),
            (10_000, 1, 10_000, 10_000),
            "{table} ids"
        );
        let (min, max, mean): (i32, i32, f64) = (row.get(4), row.get(5), row.get(6));
        assert!(
            min >= 1 && max <= 10_000,
            "{table} randomnumber in {min}..{max}"
        );
        // Uniform in 1..10000: with 10000 draws the extremes land near the ends and the
        // mean near 5000 (its standard error is about 29).
        assert!(
            min <= 20 && max >= 9_980,
            "{table} randomnumber spans only {min}..{max}"
        );
        assert!(
            (mean - 5_000.5).abs() < 200.0,
            "{table} randomnumber mean {mean}"
        );
    }

    for table in ["fortune", "\"Fortune\""] {
        let rows = client
            .query(&format!("SELECT id, message FROM {table} ORDER BY id"), &[])
            .unwrap();
        let fortunes: Vec<(i32, String)> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        let expected: Vec<(i32, String)> = FORTUNES
            .iter()
            .map(|&(id, message)| (id, message.to_owned()))
            .collect();
        assert_eq!(fortunes, expected, "{table} rows");
    }

    let setting = |client: &mut Client, name: &str| -> String {
        client
            .query_one(&format!("SHOW {name}"), &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(setting(&mut client, "server_encoding"), "UTF8");
    assert_eq!(
        setting(&mut client, "shared_preload_libraries"),
        "pg_stat_statements"
    );
    assert_eq!(setting(&mut client, "pg_stat_statements.track"), "all");
    assert_eq!(setting(&mut client, "max_connections"), "2000");
    assert_eq!(setting(&mut client, "synchronous_commit"), "off");

    // The verifier's counting works: a statement on world shows up in pg_stat_statements.
    let calls = |client: &mut Client| -> i64 {
        client
            .query_one(
                "SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements \
                 WHERE query ~* '[[:<:]]world[[:>:]]' AND query ~* 'select'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = calls(&mut client);
    for id in 1..=3 {
        client
            .query_one("SELECT randomnumber FROM world WHERE id = $1", &[&id])
            .unwrap();
    }
    assert_eq!(calls(&mut client) - before, 3);
}

#[test]
fn cluster_restarts_with_its_data() {
    let mut database = Database::from_env().expect("a database to test against");
    let Some(cluster) = database.cluster_mut() else {
        eprintln!("DATABASE_URL is set: restart is only tested on the throwaway cluster");
        return;
    };
    let url = cluster.url();
    let mut client = Client::connect(&url, NoTls).unwrap();
    client
        .execute("UPDATE world SET randomnumber = 4242 WHERE id = 1", &[])
        .unwrap();
    cluster.stop().unwrap();
    assert!(!cluster.is_running());
    assert!(
        client.query_one("SELECT 1", &[]).is_err(),
        "the old connection is closed"
    );
    cluster.restart().unwrap();
    let mut client = Client::connect(&url, NoTls).unwrap();
    let value: i32 = client
        .query_one("SELECT randomnumber FROM world WHERE id = 1", &[])
        .unwrap()
        .get(0);
    assert_eq!(value, 4242);
}
