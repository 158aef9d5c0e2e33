//! Starts a throwaway PostgreSQL loaded with TFB's schema, prints its `DATABASE_URL`, and removes
//! it again on Ctrl-C or SIGTERM. For running an implementation by hand:
//!
//! ```sh
//! cargo run -p tfb-database --bin tfb-postgres
//! ```

use std::{
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use tfb_database::Cluster;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let handler = SigAction::new(
        SigHandler::Handler(request_stop),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(error) = unsafe { sigaction(signal, &handler) } {
            eprintln!("tfb-postgres: cannot handle {signal}: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut cluster = match Cluster::start() {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("tfb-postgres: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("DATABASE_URL={}", cluster.url());
    while !STOP.load(Ordering::SeqCst) && cluster.is_running() {
        std::thread::sleep(Duration::from_millis(100));
    }
    match cluster.stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tfb-postgres: {error:#}");
            ExitCode::FAILURE
        }
    }
}
