//! A small TFB server for the conformance crate's own tests: correct in every way except the one
//! [`Fault`] it is started with. Raw HTTP/1.1 on tokio sockets, so any header or framing can be
//! got wrong on purpose, and a real PostgreSQL (the throwaway cluster) behind it, so database
//! faults show in `pg_stat_statements` exactly as a broken framework's would. It shares no code
//! with the checks, nor with the reference implementations.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use futures_util::future::try_join_all;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_postgres::{Client, NoTls, Statement};

/// The one thing the server gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    MissingServer,
    FrozenDate,
    DateWithOffset,
    MissingDate,
    CharsetUtf8WithoutDash,
    HtmlWithoutCharset,
    NoSizeHeader,
    CapitalisedMessageKey,
    ExtraJsonKey,
    NumberInHelloObject,
    DbReturnsArray,
    DbExtraKey,
    DbIdOutOfRange,
    DbIdNotNumeric,
    FooAnsweredWith500Text,
    FooAnsweredWithObject,
    EmptyAnsweredEmpty,
    Clamp501Ignored,
    QueriesUseAny,
    UpdatesTwoStatements,
    UpdatesNotPersisted,
    /// Every 40th `/db` request, its query run, is answered with the status (siege counted 503
    /// as a failed transaction, 404 and 510 not) or is not answered at all.
    FailsUnderBurst,
    BurstAnsweredNotFound,
    BurstAnsweredNotExtended,
    BurstConnectionsDropped,
    /// Every 40th `/db` response is cut off in the middle of its body.
    BurstBodiesCut,
    /// The right fortunes page with status 404: TFB never read the fortunes status.
    FortunesAnsweredNotFound,
    /// `/queries` requests served one at a time, each after a 200 ms statement of its own: a
    /// burst of them outlasts the verifier's 20 s and the queue is still worked off after it.
    QueriesQueuedSlowly,
    /// Also serves every type at a route shorter than TFB's minimum length: `/json` at `/j`,
    /// `/db` at `/d`, `/queries` at `/q` and `/updates` at `/u` (both with `q=`), `/fortunes` at
    /// `/f`, `/plaintext` at `/p` and `/cached-queries` at `/c`.
    ShortRoutes,
    /// Lists of one row whatever the count asks.
    CountIgnored,
    /// `0` answered with an empty list.
    ZeroNotClamped,
    /// `/cached-queries` reads every row from the database.
    CachedQueriesFromDatabase,
    FortunesUnsorted,
    FortunesUnescaped,
    FortunesDoubleEscaped,
    FortunesNumericDash,
    FortunesMissingClosingTd,
    FortunesExtraDiv,
    FortunesStyleTag,
    FortunesNoDoctype,
    FortunesPaddedCell,
    FortunesMissingExtra,
    PlaintextTrailingNewline,
    PlaintextWrongText,
    StaleContentLength,
    PipelineDropsRequests,
    SameIdEveryTime,
    UpdatesReportUnstoredValues,
    /// 201 instead of 200 on `/json`, `/db` and `/plaintext`.
    WrongStatus,
    QueriesExtraStatements,
    UpdateTextContainsSelect,
    DbReadsThroughView,
    FortunesNotUtf8,
    PathStyleRoutes,
    PathStyleWithoutEmptySegment,
    /// Hostile framing, answered to every request; the verifier must stay bounded.
    ChunkSizeOverflow,
    EndlessBody,
    GzipBomb,
    HugeHead,
}

struct State {
    fault: Fault,
    client: Client,
    select_world: Statement,
    select_fortunes: Statement,
    update_worlds: Statement,
    update_worlds_with_select: Statement,
    select_view: Statement,
    requests: AtomicUsize,
    /// One `/queries` request at a time, for [`Fault::QueriesQueuedSlowly`].
    queue: tokio::sync::Mutex<()>,
    /// Every World row by id, read at start-up, for `/cached-queries`.
    cache: HashMap<i32, i32>,
}

/// Starts the server on a free loopback port and returns its base URL.
pub async fn start(fault: Fault, database_url: &str) -> String {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls)
        .await
        .expect("connecting");
    tokio::spawn(connection);
    let select_world = client
        .prepare("SELECT id, randomnumber FROM world WHERE id = $1")
        .await
        .unwrap();
    let select_fortunes = client
        .prepare("SELECT id, message FROM fortune")
        .await
        .unwrap();
    let update_worlds = client
        .prepare(
            "UPDATE world SET randomnumber = v.r FROM UNNEST($1::int4[], $2::int4[]) AS v(i, r) WHERE world.id = v.i",
        )
        .await
        .unwrap();
    let update_worlds_with_select = client
        .prepare(
            "UPDATE world SET randomnumber = v.r FROM (SELECT * FROM UNNEST($1::int4[], $2::int4[])) AS v(i, r) \
             WHERE world.id = v.i",
        )
        .await
        .unwrap();
    // A view whose name does not contain the table's: TFB's counting cannot see through it.
    // Only that fault creates it: its tests take turns on the database, the others do not.
    let select_view = if fault == Fault::DbReadsThroughView {
        client
            .batch_execute("CREATE OR REPLACE VIEW planet AS SELECT * FROM world")
            .await
            .unwrap();
        client
            .prepare("SELECT id, randomnumber FROM planet WHERE id = $1")
            .await
            .unwrap()
    } else {
        select_world.clone()
    };
    let cache = client
        .query("SELECT id, randomnumber FROM world", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let state = Arc::new(State {
        fault,
        client,
        select_world,
        select_fortunes,
        update_worlds,
        update_worlds_with_select,
        select_view,
        requests: AtomicUsize::new(0),
        queue: tokio::sync::Mutex::new(()),
        cache,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection_loop(stream, Arc::clone(&state)));
        }
    });
    format!("http://{address}")
}

async fn connection_loop(mut stream: TcpStream, state: Arc<State>) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break position;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end + 4);
        let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
        if hostile(state.fault, &mut stream).await {
            return;
        }
        let answer = respond(&state, &target).await;
        if stream.write_all(&answer.bytes).await.is_err() || answer.then_close {
            return;
        }
        match state.fault {
            Fault::NoSizeHeader => return,
            Fault::PipelineDropsRequests => buffer.clear(),
            _ => {}
        }
    }
}

/// Sends the hostile faults' answers; false for every other fault.
async fn hostile(fault: Fault, stream: &mut TcpStream) -> bool {
    const HEAD: &str = "HTTP/1.1 200 OK\r\nServer: fault\r\nContent-Type: application/json\r\n";
    let bytes = match fault {
        Fault::ChunkSizeOverflow => {
            format!("{HEAD}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n").into_bytes()
        }
        Fault::HugeHead => format!(
            "{HEAD}X-Padding: {}\r\nContent-Length: 2\r\n\r\n{{}}",
            "a".repeat(200 * 1024)
        )
        .into_bytes(),
        Fault::GzipBomb => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut encoder, &vec![b' '; 64 * 1024 * 1024]).unwrap();
            let body = encoder.finish().unwrap();
            let mut bytes = format!(
                "{HEAD}Content-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            bytes.extend_from_slice(&body);
            bytes
        }
        Fault::EndlessBody => {
            if stream
                .write_all(format!("{HEAD}Connection: close\r\n\r\n[").as_bytes())
                .await
                .is_ok()
            {
                let filler = vec![b' '; 64 * 1024];
                while stream.write_all(&filler).await.is_ok() {}
            }
            return true;
        }
        _ => return false,
    };
    let _ = stream.write_all(&bytes).await;
    true
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
        }
    }
}

async fn respond(state: &State, target: &str) -> Answer {
    let fault = state.fault;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut queries = query.split('&').find_map(|pair| {
        pair.strip_prefix("queries=")
            .or_else(|| pair.strip_prefix("count="))
            .or_else(|| {
                pair.strip_prefix("q=")
                    .filter(|_| fault == Fault::ShortRoutes)
            })
    });
    // Path-style routes: /queries/N and /updates/N, where N may be empty.
    let path_style = matches!(
        fault,
        Fault::PathStyleRoutes | Fault::PathStyleWithoutEmptySegment
    );
    let path = match path
        .strip_prefix("/queries/")
        .or_else(|| path.strip_prefix("/updates/"))
    {
        Some(_) if !path_style => "/not-found",
        Some("") if fault == Fault::PathStyleWithoutEmptySegment => "/not-found",
        Some(value) => {
            queries = Some(value);
            if path.starts_with("/queries/") {
                "/queries"
            } else {
                "/updates"
            }
        }
        None if path_style && (path == "/queries" || path == "/updates") => "/not-found",
        None if fault == Fault::ShortRoutes => match path {
            "/j" => "/json",
            "/d" => "/db",
            "/q" => "/queries",
            "/u" => "/updates",
            "/f" => "/fortunes",
            "/p" => "/plaintext",
            "/c" => "/cached-queries",
            _ => path,
        },
        None => path,
    };
    let reply = match path {
        "/json" => json(fault),
        "/plaintext" => Reply::ok(
            "text/plain",
            match fault {
                Fault::PlaintextTrailingNewline => "Hello, World!\n",
                Fault::PlaintextWrongText => "Hello World",
                _ => "Hello, World!",
            },
        ),
        "/db" => db(state).await,
        "/queries" if fault == Fault::QueriesQueuedSlowly => {
            let _turn = state.queue.lock().await;
            state
                .client
                .batch_execute("SELECT pg_sleep(0.2)")
                .await
                .unwrap();
            match list_reply(fault, queries) {
                Ok(count) => queries_reply(state, count).await,
                Err(reply) => reply,
            }
        }
        "/queries" => match list_reply(fault, queries) {
            Ok(count) => queries_reply(state, count).await,
            Err(reply) => reply,
        },
        "/updates" => match list_reply(fault, queries) {
            Ok(count) => updates_reply(state, count).await,
            Err(reply) => reply,
        },
        "/fortunes" => fortunes(state).await,
        "/cached-queries" => match list_reply(fault, queries) {
            Ok(count) if fault == Fault::CachedQueriesFromDatabase => {
                queries_reply(state, count).await
            }
            Ok(count) => {
                let worlds: Vec<(i32, i32)> = (0..count)
                    .map(|_| {
                        let id = random_id(fault);
                        (id, state.cache[&id])
                    })
                    .collect();
                list_json(&worlds)
            }
            Err(reply) => reply,
        },
        _ => Reply {
            status: 404,
            content_type: "text/plain",
            body: Vec::new(),
        },
    };
    let served = state.requests.fetch_add(1, Ordering::Relaxed);
    let mut reply = reply;
    if path == "/fortunes" && fault == Fault::FortunesAnsweredNotFound {
        reply.status = 404;
    }
    if matches!(path, "/json" | "/db" | "/plaintext") && fault == Fault::WrongStatus {
        reply.status = 201;
    }
    if path != "/db" || served % 40 != 39 {
        return Answer::whole(render(fault, reply));
    }
    match fault {
        Fault::FailsUnderBurst => Answer::whole(render(
            fault,
            Reply {
                status: 503,
                content_type: "text/plain",
                body: b"busy".to_vec(),
            },
        )),
        Fault::BurstAnsweredNotFound => Answer::whole(render(
            fault,
            Reply {
                status: 404,
                ..reply
            },
        )),
        Fault::BurstAnsweredNotExtended => Answer::whole(render(
            fault,
            Reply {
                status: 510,
                ..reply
            },
        )),
        Fault::BurstConnectionsDropped => Answer {
            bytes: Vec::new(),
            then_close: true,
        },
        Fault::BurstBodiesCut => {
            let mut bytes = render(fault, reply);
            bytes.truncate(bytes.len() - 5);
            Answer {
                bytes,
                then_close: true,
            }
        }
        _ => Answer::whole(render(fault, reply)),
    }
}

/// The bytes sent for one request, and whether the connection closes after them.
struct Answer {
    bytes: Vec<u8>,
    then_close: bool,
}

impl Answer {
    fn whole(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            then_close: false,
        }
    }
}

fn render(fault: Fault, reply: Reply) -> Vec<u8> {
    let reason = match reply.status {
        200 => "OK",
        201 => "Created",
        404 => "Not Found",
        510 => "Not Extended",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    if fault != Fault::MissingServer {
        head.push_str("Server: fault-server\r\n");
    }
    match fault {
        Fault::MissingDate => {}
        Fault::FrozenDate => head.push_str("Date: Wed, 17 Apr 2013 12:00:00 GMT\r\n"),
        Fault::DateWithOffset => head.push_str(&format!(
            "Date: {}\r\n",
            http_date().replace("GMT", "+0000")
        )),
        _ => head.push_str(&format!("Date: {}\r\n", http_date())),
    }
    let content_type = match (fault, reply.content_type) {
        (Fault::CharsetUtf8WithoutDash, "application/json") => "application/json; charset=utf8",
        (Fault::HtmlWithoutCharset, "text/html; charset=utf-8") => "text/html",
        (_, content_type) => content_type,
    };
    head.push_str(&format!("Content-Type: {content_type}\r\n"));
    match fault {
        Fault::NoSizeHeader => head.push_str("Connection: close\r\n"),
        // Chunked framing wins over Content-Length, so clients (and TFB) never notice this one.
        Fault::StaleContentLength => head.push_str(&format!(
            "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
            reply.body.len() + 5
        )),
        _ => head.push_str(&format!("Content-Length: {}\r\n", reply.body.len())),
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    if fault == Fault::StaleContentLength {
        bytes.extend_from_slice(format!("{:x}\r\n", reply.body.len()).as_bytes());
        bytes.extend_from_slice(&reply.body);
        bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    } else {
        bytes.extend_from_slice(&reply.body);
    }
    bytes
}

fn json(fault: Fault) -> Reply {
    let body = match fault {
        Fault::CapitalisedMessageKey => r#"{"Message":"Hello, World!"}"#,
        Fault::ExtraJsonKey => r#"{"message":"Hello, World!","extra":"x"}"#,
        Fault::NumberInHelloObject => r#"{"message":"Hello, World!","n":1}"#,
        _ => r#"{"message":"Hello, World!"}"#,
    };
    Reply::ok("application/json", body)
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn random_id(fault: Fault) -> i32 {
    if fault == Fault::SameIdEveryTime {
        return 42;
    }
    // A splitmix-style draw from a shared counter: fresh and uniform enough for the spread check.
    let mut x = NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64 ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % 10_000) as i32 + 1
}

async fn select_world(state: &State) -> Result<(i32, i32), tokio_postgres::Error> {
    let statement = if state.fault == Fault::DbReadsThroughView {
        &state.select_view
    } else {
        &state.select_world
    };
    let row = state
        .client
        .query_one(statement, &[&random_id(state.fault)])
        .await?;
    Ok((row.get(0), row.get(1)))
}

fn world_json((id, number): (i32, i32)) -> String {
    format!(r#"{{"id":{id},"randomNumber":{number}}}"#)
}

async fn db(state: &State) -> Reply {
    let Ok(world) = select_world(state).await else {
        return Reply {
            status: 500,
            content_type: "text/plain",
            body: b"db error".to_vec(),
        };
    };
    let body = match state.fault {
        Fault::DbReturnsArray => format!("[{}]", world_json(world)),
        Fault::DbExtraKey => format!(
            r#"{{"id":{},"randomNumber":{},"extra":1}}"#,
            world.0, world.1
        ),
        Fault::DbIdOutOfRange => format!(
            r#"{{"id":{},"randomNumber":{}}}"#,
            world.0 + 10_000,
            world.1
        ),
        Fault::DbIdNotNumeric => format!(r#"{{"id":"abc","randomNumber":{}}}"#, world.1),
        _ => world_json(world),
    };
    Reply::ok("application/json", body)
}

/// The row count for a `queries` value, or the faulty reply some faults give instead.
fn list_reply(fault: Fault, value: Option<&str>) -> Result<usize, Reply> {
    let value = value.unwrap_or("");
    match (fault, value) {
        (Fault::FooAnsweredWith500Text, "foo") => {
            return Err(Reply {
                status: 500,
                content_type: "text/plain",
                body: b"bad queries".to_vec(),
            });
        }
        (Fault::FooAnsweredWithObject, "foo") => {
            return Err(Reply::ok("application/json", world_json((1, 1))));
        }
        (Fault::EmptyAnsweredEmpty, "") => {
            return Err(Reply {
                status: 400,
                content_type: "application/json",
                body: Vec::new(),
            });
        }
        _ => {}
    }
    let count = match value.parse::<i64>() {
        _ if fault == Fault::CountIgnored => 1,
        Ok(0) if fault == Fault::ZeroNotClamped => 0,
        Ok(count) if count > 500 && fault == Fault::Clamp501Ignored => 1,
        Ok(count) => count.clamp(1, 500) as usize,
        Err(_) => 1,
    };
    Ok(count)
}

fn list_json(worlds: &[(i32, i32)]) -> Reply {
    let items: Vec<String> = worlds.iter().copied().map(world_json).collect();
    Reply::ok("application/json", format!("[{}]", items.join(",")))
}

async fn queries_reply(state: &State, count: usize) -> Reply {
    let worlds = if state.fault == Fault::QueriesUseAny {
        let ids: Vec<i32> = (0..count).map(|_| random_id(state.fault)).collect();
        state
            .client
            .query(
                "SELECT id, randomnumber FROM world WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map(|rows| rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    } else {
        try_join_all((0..count).map(|_| select_world(state))).await
    };
    if state.fault == Fault::QueriesExtraStatements {
        for _ in 0..2 {
            let _ = state
                .client
                .query_one("SELECT count(*) FROM world", &[])
                .await;
        }
    }
    match worlds {
        Ok(worlds) => list_json(&worlds),
        Err(_) => Reply {
            status: 500,
            content_type: "text/plain",
            body: b"db error".to_vec(),
        },
    }
}

async fn updates_reply(state: &State, count: usize) -> Reply {
    let Ok(mut worlds) = try_join_all((0..count).map(|_| select_world(state))).await else {
        return Reply {
            status: 500,
            content_type: "text/plain",
            body: b"db error".to_vec(),
        };
    };
    let mut new_numbers: HashMap<i32, i32> = HashMap::new();
    for world in &mut worlds {
        let number = new_numbers
            .entry(world.0)
            .or_insert_with(|| (world.1 % 10_000) + 1);
        world.1 = *number;
    }
    let mut ids: Vec<i32> = new_numbers.keys().copied().collect();
    ids.sort_unstable();
    let numbers: Vec<i32> = ids.iter().map(|id| new_numbers[id]).collect();
    let result = match state.fault {
        Fault::UpdatesNotPersisted => Ok(0),
        Fault::UpdatesTwoStatements => {
            let half = ids.len() / 2;
            let (first_ids, second_ids) = (ids[..half].to_vec(), ids[half..].to_vec());
            let (first_numbers, second_numbers) =
                (numbers[..half].to_vec(), numbers[half..].to_vec());
            let first_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&first_ids, &first_numbers];
            let second_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
                [&second_ids, &second_numbers];
            let first = state.client.execute(&state.update_worlds, &first_params);
            let second = state.client.execute(&state.update_worlds, &second_params);
            futures_util::future::try_join(first, second)
                .await
                .map(|(a, b)| a + b)
        }
        Fault::UpdateTextContainsSelect => {
            state
                .client
                .execute(&state.update_worlds_with_select, &[&ids, &numbers])
                .await
        }
        _ => {
            state
                .client
                .execute(&state.update_worlds, &[&ids, &numbers])
                .await
        }
    };
    if result.is_err() {
        return Reply {
            status: 500,
            content_type: "text/plain",
            body: b"db error".to_vec(),
        };
    }
    if state.fault == Fault::UpdatesReportUnstoredValues {
        for world in &mut worlds {
            world.1 = world.1 % 10_000 + 1;
        }
    }
    list_json(&worlds)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn fortunes(state: &State) -> Reply {
    let Ok(rows) = state.client.query(&state.select_fortunes, &[]).await else {
        return Reply {
            status: 500,
            content_type: "text/plain",
            body: b"db error".to_vec(),
        };
    };
    let fault = state.fault;
    let mut fortunes: Vec<(i32, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    if fault != Fault::FortunesMissingExtra {
        fortunes.push((0, "Additional fortune added at request time.".to_owned()));
    }
    if fault == Fault::FortunesUnsorted {
        fortunes.sort_by_key(|fortune| fortune.0);
    } else {
        fortunes.sort_by(|a, b| a.1.cmp(&b.1));
    }
    let mut page = String::new();
    if fault != Fault::FortunesNoDoctype {
        page.push_str("<!DOCTYPE html>");
    }
    page.push_str("<html><head><title>Fortunes</title>");
    if fault == Fault::FortunesStyleTag {
        page.push_str("<style>td{padding:1px}</style>");
    }
    page.push_str("</head><body>");
    if fault == Fault::FortunesExtraDiv {
        page.push_str("<div>");
    }
    page.push_str("<table><tr><th>id</th><th>message</th></tr>");
    for (id, message) in &fortunes {
        let message = match fault {
            Fault::FortunesUnescaped => message.clone(),
            Fault::FortunesDoubleEscaped => escape(&escape(message)),
            Fault::FortunesNumericDash => escape(message).replace('\u{2014}', "&#8212;"),
            _ => escape(message),
        };
        let (open, close) = match fault {
            Fault::FortunesPaddedCell => ("<td> ", " </td>"),
            Fault::FortunesMissingClosingTd => ("<td>", ""),
            _ => ("<td>", "</td>"),
        };
        page.push_str(&format!("<tr><td>{id}</td>{open}{message}{close}</tr>"));
    }
    page.push_str("</table>");
    if fault == Fault::FortunesExtraDiv {
        page.push_str("</div>");
    }
    page.push_str("</body></html>");
    let mut body = page.into_bytes();
    if fault == Fault::FortunesNotUtf8 {
        // Latin-1 bytes where UTF-8 belongs.
        body.extend_from_slice(&[0xe9, 0xe8]);
    }
    Reply::ok("text/html; charset=utf-8", body)
}

/// The current time as an IMF-fixdate (`Wed, 17 Apr 2013 12:00:00 GMT`).
fn http_date() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}
