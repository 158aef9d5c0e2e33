//! The server as a process: what it prints, the contract exceptions it declares, and a graceful
//! stop on SIGTERM with requests in flight.

use super::*;

pub(crate) fn logs_one_line_only(target: &Target) -> CheckResult {
    for (_, url) in target.test.paths() {
        target.get(url)?;
    }
    let _ = target.get("/does-not-exist");
    let mut malformed = Connection::open(target.address()).map_err(|error| error.to_string())?;
    let _ = malformed.send(b"THIS IS NOT HTTP\r\n\r\n");
    let _ = malformed.read_response();
    if target.excepts(ContractException::OneLineOnly) {
        return prints_per_malformed_request(target);
    }
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

/// Under the `one-line-only` exception: the malformed request was printed about.
pub(crate) fn prints_per_malformed_request(target: &Target) -> CheckResult {
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    while target.server.output().len() <= 1 {
        if started.elapsed() > PATIENCE {
            return Err(exception_gone(
                ContractException::OneLineOnly,
                "a malformed request printed nothing",
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Every declared contract exception is named in the test's `notes` and in
/// implementations/README.md, where users read what a framework does not do.
pub(crate) fn exceptions_are_documented(target: &Target) -> CheckResult {
    let notes = target
        .test
        .other
        .get("notes")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let readme = std::fs::read_to_string(workspace_root().join("implementations/README.md"))
        .map_err(|error| format!("reading implementations/README.md: {error}"))?;
    for clause in target.implementation.exceptions.keys() {
        if !notes.contains(clause.name()) {
            return Err(format!(
                "benchmark_config.json's notes do not name the exception `{}`",
                clause.name()
            ));
        }
        if !readme.contains(&format!("`{}`", clause.name())) {
            return Err(format!(
                "implementations/README.md does not name the exception `{}`",
                clause.name()
            ));
        }
    }
    Ok(())
}

/// The requests are certainly in flight at the signal, whatever the machine's load: the
/// network to the database stalls (a proxy holds their statements) while they are sent, and the
/// signal goes only once the kernel shows every request read off its socket. The proxy resumes
/// once the server refuses connections, well inside the contract's 5 s bound on a silent
/// database (a locked table would meet the 1 s statement timeout instead).
pub(crate) fn sigterm_drains_and_exits_zero(target: &Target) -> CheckResult {
    const IN_FLIGHT: usize = 6;
    let url = format!("{}20", target.url(TestType::Query));
    let (_cluster, proxy, through_proxy) = cluster_behind_a_proxy()?;
    let mut server = ServerProcess::start(target.binary, &through_proxy, target.url(TestType::Db))
        .map_err(|error| format!("{error:#}"))?;
    served_again(server.address(), &url, "the server started")?;
    proxy.stall();
    let mut in_flight = Vec::new();
    for _ in 0..IN_FLIGHT {
        let mut connection =
            Connection::open(server.address()).map_err(|error| error.to_string())?;
        connection
            .send(&http::get_request(&url))
            .map_err(|error| error.to_string())?;
        in_flight.push(connection);
    }
    for connection in &mut in_flight {
        let client = connection
            .local_address()
            .map_err(|error| error.to_string())?;
        wait_until_read(server.address(), client)?;
    }
    nix::sys::signal::kill(server.pid(), nix::sys::signal::Signal::SIGTERM)
        .map_err(|error| error.to_string())?;
    if target.excepts(ContractException::GracefulStop) {
        let status = server
            .wait_for_exit(Duration::from_secs(20))
            .map_err(|error| format!("{error:#}"))?;
        proxy.resume();
        if status.code() != Some(0) {
            return Err(format!(
                "after SIGTERM the server exited with {status}, expected 0"
            ));
        }
        for (index, connection) in in_flight.iter_mut().enumerate() {
            if connection.read_response().is_ok() {
                return Err(exception_gone(
                    ContractException::GracefulStop,
                    &format!("in-flight request {index} was answered at SIGTERM"),
                ));
            }
        }
        return Ok(());
    }
    // The answers must come after the server has taken in the stop, or no server could tell
    // its clients: it has once it refuses connections.
    wait_until_refused(server.address())?;
    proxy.resume();
    for (index, connection) in in_flight.iter_mut().enumerate() {
        let response = connection.read_response().map_err(|error| {
            format!("in-flight request {index} was dropped at SIGTERM: {error}")
        })?;
        let rows = parse_world_list(&response, &url)?;
        if response.status != 200 || rows.len() != 20 {
            return Err(format!(
                "in-flight request {index}: status {} with {} rows",
                response.status,
                rows.len()
            ));
        }
        // A keep-alive client told nothing sends its next request into a closing socket, and
        // under load loses it to a reset.
        if !response
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
        {
            return Err(format!(
                "in-flight request {index}: answered after SIGTERM without `Connection: close`"
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

/// Returns once `address` refuses connections: the server has stopped accepting.
pub(crate) fn wait_until_refused(address: SocketAddr) -> CheckResult {
    // Only a server that never stops accepting hits this.
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    while std::net::TcpStream::connect(address).is_ok() {
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "still accepting connections {PATIENCE:?} after SIGTERM"
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

pub(crate) fn connect_database(url: &str) -> Result<postgres::Client, String> {
    postgres::Client::connect(url, postgres::NoTls)
        .map_err(|error| format!("connecting to the database: {error}"))
}

/// Returns once the server has taken every byte the client sent off the socket.
pub(crate) fn wait_until_read(server: SocketAddr, client: SocketAddr) -> CheckResult {
    // Only a server that never reads hits this; a busy one reads in milliseconds.
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    loop {
        match http::unread_by_server(server, client) {
            Ok(Some(0)) => return Ok(()),
            Ok(Some(unread)) if started.elapsed() > PATIENCE => {
                return Err(format!(
                    "the server left {unread} bytes of a request unread for {PATIENCE:?}"
                ));
            }
            Ok(Some(_)) => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                return Err(format!(
                    "the connection from {client} to {server} is not in the kernel's TCP table"
                ));
            }
            Err(error) => return Err(format!("reading the kernel's TCP table: {error}")),
        }
    }
}
