//! Running an implementation as a child process: on a free port, against a given database,
//! ready when it answers, stopped with SIGTERM like a container runtime would.

use std::{
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

use crate::http;

/// TFB waited this long for a server to answer its first request.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

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
