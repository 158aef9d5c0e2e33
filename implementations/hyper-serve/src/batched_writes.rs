//! A TCP stream that holds a connection's responses until hyper needs more input, so the answers
//! to a pipelined batch go out in one write.
//!
//! hyper's own `pipeline_flush` does the same inside its buffer, but when a later request in the
//! batch is malformed it drops the connection with the earlier, valid responses still unsent.
//! Here hyper flushes every response into this stream's buffer (its write state is then clean,
//! so it can also answer the malformed request with 400), and the buffer is sent when hyper asks
//! for more input, when it shuts the connection, when the buffer is full, and, as a last resort,
//! when the connection is dropped after an error.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// Past this many unsent bytes the buffer is sent before taking more: a deep pipeline of large
/// responses stays bounded.
const SEND_THRESHOLD: usize = 64 * 1024;

pub struct BatchedWrites {
    stream: TcpStream,
    unsent: Vec<u8>,
    /// How much of `unsent` is already on the wire.
    sent: usize,
}

impl BatchedWrites {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            unsent: Vec::with_capacity(4096),
            sent: 0,
        }
    }

    /// Writes out everything buffered.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.unsent.len() {
            let written =
                ready!(Pin::new(&mut self.stream).poll_write(cx, &self.unsent[self.sent..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += written;
        }
        self.unsent.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for BatchedWrites {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper reads only once it has answered every request it holds: the batch is complete.
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BatchedWrites {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.unsent.len() >= SEND_THRESHOLD {
            ready!(this.poll_send(cx))?;
        }
        let mut taken = 0;
        for slice in slices {
            this.unsent.extend_from_slice(slice);
            taken += slice.len();
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// hyper flushes after every response; holding them here is the point.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

impl Drop for BatchedWrites {
    /// hyper drops a connection after a protocol error without shutting it down: whatever the
    /// socket takes without blocking still reaches the client.
    fn drop(&mut self) {
        while self.sent < self.unsent.len() {
            match self.stream.try_write(&self.unsent[self.sent..]) {
                Ok(written) if written > 0 => self.sent += written,
                _ => break,
            }
        }
    }
}
