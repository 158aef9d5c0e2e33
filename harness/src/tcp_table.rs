//! The kernel's table of TCP sockets (`/proc/net/tcp` and `/proc/net/tcp6`), read by the tests
//! to see what no socket API shows: who listens on a port, and what a server has not yet read.

use std::io;

/// One socket of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    pub listening: bool,
    /// Bytes received and not yet read by the socket's owner.
    pub unread: u64,
    pub inode: u64,
}

/// Every IPv4 and IPv6 TCP socket in this network namespace.
pub fn sockets() -> io::Result<Vec<TcpSocket>> {
    let mut sockets = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No IPv6 in this namespace: no table for it.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        for row in text.lines().skip(1) {
            let fields: Vec<&str> = row.split_whitespace().collect();
            let parsed = (|| {
                let port = |entry: &str| u16::from_str_radix(entry.rsplit_once(':')?.1, 16).ok();
                Some(TcpSocket {
                    local_port: port(fields.get(1)?)?,
                    remote_port: port(fields.get(2)?)?,
                    listening: *fields.get(3)? == "0A",
                    unread: u64::from_str_radix(fields.get(4)?.split_once(':')?.1, 16).ok()?,
                    inode: fields.get(9)?.parse().ok()?,
                })
            })();
            sockets.push(parsed.ok_or_else(|| {
                io::Error::other(format!("{table}: a row this reader does not know: {row}"))
            })?);
        }
    }
    Ok(sockets)
}
