//! The stop signals (SIGTERM, SIGINT) caught on a Tokio runtime of their own, for servers whose
//! framework handles them in a way the implementation contract does not allow: the glue installs
//! them before its ready line, waits on a thread of its own, then stops the server its way.

use std::{future::Future, io};

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct StopSignals {
    runtime: tokio::runtime::Runtime,
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Installs the handlers: from now on a stop signal waits for [`StopSignals::wait`] instead of
    /// ending the process.
    pub fn install() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (terminate, interrupt) = runtime.block_on(async {
            Ok::<_, io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })?;
        Ok(Self {
            runtime,
            terminate,
            interrupt,
        })
    }

    /// Blocks until either signal comes.
    pub fn wait(&mut self) {
        let (terminate, interrupt) = (&mut self.terminate, &mut self.interrupt);
        self.runtime.block_on(async {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        });
    }

    /// Runs `future` to completion on this runtime: how a framework's stop is awaited from the
    /// signal thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
