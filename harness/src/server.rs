//! Running an implementation as a child process: on a free port, against a given database,
//! ready when it answers, stopped with SIGTERM like a container runtime would. The servers bind
//! with `SO_REUSEPORT`, so a port picked here and bound by someone else too would be shared
//! silently: once ready, the server must be the only process listening on its port, or it is
//! started again on another.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Read},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{http, tcp_table};

/// TFB waited this long for a server to answer its first request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports tried before giving up on finding one nobody else binds.
const PORT_ATTEMPTS: usize = 5;

/// A running implementation. Dropping it kills the process if it still runs.
pub struct ServerProcess {
    /// Locked only to reap the exit, so a running load can ask whether the server still lives.
    child: Mutex<Child>,
    address: SocketAddr,
    output: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `binary` with `PORT` and `DATABASE_URL` set, and waits until `ready_path` answers
    /// 200 (as TFB did with the first URL of the test).
    pub fn start(binary: &Path, database_url: &str, ready_path: &str) -> anyhow::Result<Self> {
        for _ in 0..PORT_ATTEMPTS {
            let server = Self::start_on_a_free_port(binary, database_url, ready_path)?;
            if foreign_listeners(server.pid().as_raw() as u32, server.address.port()).is_empty() {
                return Ok(server);
            }
        }
        bail!(
            "{}: every port picked for it ({PORT_ATTEMPTS} tries) was also bound by another process",
            binary.display()
        )
    }

    fn start_on_a_free_port(
        binary: &Path,
        database_url: &str,
        ready_path: &str,
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(binary)
            .env("PORT", port.to_string())
            .env("DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take(), &output);
        collect_lines(child.stderr.take(), &output);
        let mut server = Self {
            child: Mutex::new(child),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            output,
        };
        server.wait_until_ready(ready_path, binary)?;
        Ok(server)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every line the server printed so far, stdout and stderr interleaved.
    pub fn output(&self) -> Vec<String> {
        self.output
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.lock_child().id() as i32)
    }

    /// How the process ended, once it has: a server that crashed or was killed under load.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.lock_child().try_wait().ok().flatten()
    }

    fn lock_child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let _ = kill(self.pid(), Signal::SIGTERM);
        self.wait_for_exit(STOP_TIMEOUT)
    }

    pub fn wait_for_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.lock_child().try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the server did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_ready(&mut self, path: &str, binary: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.lock_child().try_wait()? {
                bail!(
                    "{} exited ({status}) before it was ready:\n{}",
                    binary.display(),
                    self.output().join("\n")
                );
            }
            if http::get(self.address, path).is_ok_and(|response| response.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer GET {path} with 200 within {READY_TIMEOUT:?}:\n{}",
                    binary.display(),
                    self.output().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let mut child = self.lock_child();
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sockets listening on TCP `port` (any address, IPv4 or IPv6) that process `pid` does not hold.
fn foreign_listeners(pid: u32, port: u16) -> Vec<u64> {
    let held: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let inode = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?;
            inode.parse().ok()
        })
        .collect();
    tcp_table::sockets()
        .unwrap_or_default()
        .into_iter()
        .filter(|socket| socket.listening && socket.local_port == port)
        .map(|socket| socket.inode)
        .filter(|inode| !held.contains(inode))
        .collect()
}

fn collect_lines(stream: Option<impl Read + Send + 'static>, lines: &Arc<Mutex<Vec<String>>>) {
    let Some(stream) = stream else { return };
    let lines = Arc::clone(lines);
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second listener on the port, as SO_REUSEPORT allows, is seen as another process's; the
    /// process's own listener is not.
    #[test]
    fn a_port_shared_with_another_process_is_seen() {
        let listener = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .unwrap();
        listener.set_reuse_port(true).unwrap();
        listener
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        listener.listen(16).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        assert!(foreign_listeners(std::process::id(), port).is_empty());
        let mut other = Command::new("sleep").arg("60").spawn().unwrap();
        let seen = foreign_listeners(other.id(), port);
        other.kill().unwrap();
        other.wait().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
    }
}
