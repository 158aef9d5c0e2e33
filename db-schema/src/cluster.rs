//! A throwaway PostgreSQL cluster: initdb'd in a temporary directory, TFB's settings appended,
//! served on a free loopback port, loaded with the schema, and removed when dropped.
//!
//! `initdb` and `postgres` refuse to run as root, so when this process is root the cluster's
//! files and processes belong to the unprivileged `postgres` user that Debian's package creates.

use std::{
    fs::{self, File},
    io::Write,
    net::TcpListener,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::{Pid, Uid, User},
};
use tempfile::TempDir;

use crate::{
    CREATE_DATABASE_SQL, CREATE_TABLES_SQL, DATABASE, PASSWORD, POSTGRESQL_CONF, PgBinaries, USER,
};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const PORT_ATTEMPTS: usize = 5;

/// A running throwaway server. Dropping it stops the server and deletes its files.
pub struct Cluster {
    binaries: PgBinaries,
    dir: TempDir,
    owner: Option<User>,
    port: u16,
    server: Option<Child>,
}

impl Cluster {
    /// initdb's a new cluster, starts it and loads TFB's schema and data.
    pub fn start() -> anyhow::Result<Self> {
        let binaries = PgBinaries::find()?;
        let owner = unprivileged_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("tfb-postgres-")
            .tempdir()
            .context("creating a temporary directory for the cluster")?;
        if let Some(owner) = &owner {
            std::os::unix::fs::chown(
                dir.path(),
                Some(owner.uid.as_raw()),
                Some(owner.gid.as_raw()),
            )
            .context("handing the cluster directory to the postgres user")?;
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let mut cluster = Self {
            binaries,
            dir,
            owner,
            port: 0,
            server: None,
        };
        cluster.initdb()?;
        cluster.start_on_free_port()?;
        cluster.load_schema()?;
        Ok(cluster)
    }

    /// A `postgres://` URL for `benchmarkdbuser` on `hello_world` over loopback TCP.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id while the server runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.server.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Stops the server with a fast shutdown, as an operator restarting it would: open
    /// connections are closed and in-flight statements aborted. The data stays.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(i32::try_from(server.id()).context("pid out of range")?);
        // SIGINT is PostgreSQL's "fast" shutdown.
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if server.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = server.kill();
        let _ = server.wait();
        bail!("PostgreSQL did not stop within {STOP_TIMEOUT:?}; killed it")
    }

    /// Starts the stopped server again on the same port, with the same data.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn_server()?;
        self.wait_until_ready()
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Puts `rule` first in `pg_hba.conf`, so it wins over initdb's rules; it applies once the
    /// configuration is reloaded (`SELECT pg_reload_conf()`). Lets client tests try each
    /// authentication method (`password`, `md5`, `scram-sha-256`).
    pub fn prepend_hba_rule(&self, rule: &str) -> anyhow::Result<()> {
        let path = self.data_dir().join("pg_hba.conf");
        let rules = fs::read_to_string(&path).context("reading pg_hba.conf")?;
        fs::write(&path, format!("{rule}\n{rules}")).context("writing pg_hba.conf")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command for a cluster program, run as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.binaries.path(program));
        command.current_dir(self.dir.path());
        if let Some(owner) = &self.owner {
            command.uid(owner.uid.as_raw()).gid(owner.gid.as_raw());
        }
        command
    }

    fn initdb(&self) -> anyhow::Result<()> {
        let output = self
            .command("initdb")
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--username=postgres", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"])
            .arg("--no-sync")
            .output()
            .context("running initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut conf = fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir().join("postgresql.conf"))
            .context("opening the cluster's postgresql.conf")?;
        writeln!(conf, "\n# db-schema/postgresql.conf\n{POSTGRESQL_CONF}")?;
        if let Some(io_workers) = io_workers(self.binaries.major_version) {
            writeln!(conf, "io_workers = {io_workers}")?;
        }
        Ok(())
    }

    fn start_on_free_port(&mut self) -> anyhow::Result<()> {
        for _ in 0..PORT_ATTEMPTS {
            self.port = free_loopback_port()?;
            self.spawn_server()?;
            match self.wait_until_ready() {
                Ok(()) => return Ok(()),
                // Another process took the port between our probe and the server's bind.
                Err(_) if self.log_tail().contains("could not bind") => continue,
                Err(error) => return Err(error),
            }
        }
        bail!("PostgreSQL found no free loopback port in {PORT_ATTEMPTS} attempts")
    }

    fn spawn_server(&mut self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the server log")?;
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            // Loopback only: TFB's '*' is for its private Docker network, not a test machine.
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.server = Some(server);
        Ok(())
    }

    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                bail!("PostgreSQL exited while starting:\n{}", self.log_tail());
            }
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .context("running pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL was not ready within {READY_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs create-database.sql with psql as the cluster's superuser, over the Unix socket.
    fn load_schema(&self) -> anyhow::Result<()> {
        let script = self.dir.path().join("create-database.sql");
        fs::write(&script, CREATE_DATABASE_SQL)?;
        fs::write(
            self.dir.path().join("create-postgres.sql"),
            CREATE_TABLES_SQL,
        )?;
        let output = self
            .command("psql")
            .args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .arg("-f")
            .arg(&script)
            .output()
            .context("running psql")?;
        if !output.status.success() {
            bail!(
                "loading the schema failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The user that owns the cluster when we are root; `None` runs it as ourselves.
fn unprivileged_owner() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres")? {
        Some(user) => Ok(Some(user)),
        None => bail!(
            "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
             user to run it as; install Debian's `postgresql` package (it creates one) or run \
             as an unprivileged user"
        ),
    }
}

fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("probing for a free port")?;
    Ok(listener.local_addr()?.port())
}

/// TFB's io_workers rule, for the servers that have the setting (PostgreSQL 18 and later).
fn io_workers(major_version: u32) -> Option<usize> {
    if major_version < 18 {
        return None;
    }
    let cpus = thread::available_parallelism().map_or(1, usize::from);
    Some(cpus.div_ceil(4).min(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_workers_only_from_postgres_18() {
        assert_eq!(io_workers(15), None);
        assert!(io_workers(18).is_some_and(|workers| (1..=32).contains(&workers)));
    }
}
