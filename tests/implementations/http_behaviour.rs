//! How the server behaves as an HTTP server, whatever the type: pipelining, the Date header,
//! unknown paths, malformed and oversized requests, slow and half-closing clients, connection
//! handling.

use super::*;

pub(crate) fn pipelined_16_deep(target: &Target) -> CheckResult {
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

pub(crate) fn pipelined_mixed_in_order(target: &Target) -> CheckResult {
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

pub(crate) fn date_refreshes(target: &Target) -> CheckResult {
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

pub(crate) fn unknown_path_is_404(target: &Target) -> CheckResult {
    for path in ["/does-not-exist", "/jsonx", "/db/extra"] {
        let response = target.get(path)?;
        if response.status != 404 {
            return Err(format!("GET {path}: expected 404, got {}", response.status));
        }
    }
    Ok(())
}

pub(crate) fn wrong_method_is_rejected(target: &Target) -> CheckResult {
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

pub(crate) fn malformed_request_is_rejected(target: &Target) -> CheckResult {
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
pub(crate) fn refused_and_kept_open(target: &Target, request: &[u8], status: u16) -> CheckResult {
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
pub(crate) fn rejected_or_answered_then_closed(target: &Target, framing: &str) -> CheckResult {
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
pub(crate) fn pipelined_then_malformed(target: &Target) -> CheckResult {
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
pub(crate) fn closed_unanswered(
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
pub(crate) fn half_closed_client_is_answered(target: &Target) -> CheckResult {
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
pub(crate) fn hostile_requests_are_answered_or_refused(target: &Target) -> CheckResult {
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
pub(crate) fn oversized_header_is_rejected(target: &Target) -> CheckResult {
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
pub(crate) fn answered_despite_its_size(target: &Target, request: &[u8]) -> CheckResult {
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
pub(crate) fn slow_and_idle_clients_are_cut(target: &Target) -> CheckResult {
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
pub(crate) fn kept_past_the_head_timeout(clients: [(&str, std::net::TcpStream); 2]) -> CheckResult {
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
pub(crate) fn descriptor_limit_is_survived(target: &Target) -> CheckResult {
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
pub(crate) fn spins_out_of_descriptors(server: &mut ServerProcess, cpu_before: f64) -> CheckResult {
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
pub(crate) fn cpu_seconds(pid: nix::unistd::Pid) -> f64 {
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
pub(crate) fn refuses_a_port_in_use(target: &Target) -> CheckResult {
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

pub(crate) fn rejected_with_400_or_close(
    target: &Target,
    request: &[u8],
    allowed: &[u16],
) -> CheckResult {
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

pub(crate) fn still_serving(target: &Target) -> CheckResult {
    let url = target.url(TestType::Json);
    let response = target.get(url)?;
    check_success(&response, url, ContentKind::Json)
        .map_err(|error| format!("after the bad request, the server no longer serves: {error}"))
}
