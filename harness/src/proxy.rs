//! A TCP proxy that can stop forwarding without closing anything: what a server sees when the
//! network to its database stalls (a partition, a hung host). Connections stay open; bytes that
//! arrive while stalled are held and delivered, in order, once the proxy resumes.

use std::{
    io::{self, Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

/// Forwards every connection made to [`Self::address`] to the upstream address.
pub struct StallingProxy {
    address: SocketAddr,
    stalled: Arc<AtomicBool>,
}

impl StallingProxy {
    /// Listens on a free loopback port; runs until the process ends.
    pub fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let stalled = Arc::new(AtomicBool::new(false));
        let accepting = Arc::clone(&stalled);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                for (from, to) in [(&client, &server), (&server, &client)] {
                    if let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) {
                        let stalled = Arc::clone(&accepting);
                        thread::spawn(move || pump(from, to, &stalled));
                    }
                }
            }
        });
        Ok(Self { address, stalled })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// From now on nothing is forwarded, in either direction, on any connection.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, holding what it read while the proxy is stalled.
fn pump(mut from: TcpStream, mut to: TcpStream, stalled: &AtomicBool) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        while stalled.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(20));
        }
        if to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
