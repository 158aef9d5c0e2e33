//! The checks of each test type: bodies, headers and query edge cases of every URL the test
//! configures, the exact fortunes page, and updates that are stored.

use super::*;

pub(crate) fn json_body_and_headers(target: &Target) -> CheckResult {
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

pub(crate) fn plaintext_body_and_headers(target: &Target) -> CheckResult {
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

pub(crate) fn db_body_and_headers(target: &Target) -> CheckResult {
    let url = target.url(TestType::Db);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)?;
    check_world(&parse_json(&response, url)?).map_err(|error| format!("GET {url}: {error}"))?;
    Ok(())
}

pub(crate) fn db_ids_spread(target: &Target) -> CheckResult {
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
pub(crate) const QUERY_CASES: &[(&str, usize)] = &[
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

pub(crate) fn query_edge_cases(target: &Target) -> CheckResult {
    list_edge_cases(target, target.url(TestType::Query))
}

pub(crate) fn update_edge_cases(target: &Target) -> CheckResult {
    let _writes = target
        .world_writes
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    list_edge_cases(target, target.url(TestType::Update))
}

pub(crate) fn cached_query_edge_cases(target: &Target) -> CheckResult {
    list_edge_cases(target, target.url(TestType::CachedQuery))
}

pub(crate) fn list_edge_cases(target: &Target, base: &str) -> CheckResult {
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

pub(crate) fn update_rows_are_stored(target: &Target) -> CheckResult {
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

pub(crate) fn world_table(database: &mut postgres::Client) -> Result<HashMap<i32, i32>, String> {
    let rows = database
        .query("SELECT id, randomnumber FROM world", &[])
        .map_err(|error| format!("reading world: {error}"))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The page every implementation must serve, byte for byte (sailfish's and yarte's escaping:
/// `&lt; &gt; &quot; &#039; &amp;`). TFB's verifier accepts more spellings; we pin one.
pub(crate) const FORTUNES_PAGE: &str = concat!(
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

pub(crate) fn fortune_exact_page(target: &Target) -> CheckResult {
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
