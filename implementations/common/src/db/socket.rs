//! The shared connections' socket: a Tokio TCP stream as xitca-postgres' I/O, read through
//! Tokio's own `poll_read`.
//!
//! xitca-postgres reads until the socket says `WouldBlock`, so on its own TCP stream every
//! wake-up ends with a `recvfrom` that finds nothing (18 of them per `/queries?queries=20`
//! request against 10 on tokio-postgres). Tokio's `poll_read` knows better: a read that fills
//! less than the buffer has drained the socket, so it forgets the readiness, and the next read
//! returns `WouldBlock` without asking the kernel. The readiness it forgets is the one it saw
//! before the read, so data that arrives meanwhile still wakes the driver.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready},
    net::TcpStream,
};
use xitca_io::io::AsyncIo;

pub(super) struct Socket(TcpStream);

impl Socket {
    /// Connects with Nagle off, as every database driver has it.
    pub(super) async fn connect(address: &(String, u16)) -> io::Result<Self> {
        let stream = TcpStream::connect((address.0.as_str(), address.1)).await?;
        stream.set_nodelay(true)?;
        Ok(Self(stream))
    }
}

impl AsyncIo for Socket {
    fn ready(&mut self, interest: Interest) -> impl Future<Output = io::Result<Ready>> + Send {
        self.0.ready(interest)
    }

    fn poll_ready(&mut self, interest: Interest, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        if interest.is_readable() {
            self.0.poll_read_ready(cx).map_ok(|()| Ready::READABLE)
        } else {
            self.0.poll_write_ready(cx).map_ok(|()| Ready::WRITABLE)
        }
    }

    fn is_vectored_write(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = ReadBuf::new(buf);
        // The driver waits through `ready`, never through this waker.
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.0).poll_read(&mut cx, &mut filled) {
            Poll::Ready(Ok(())) => Ok(filled.filled().len()),
            Poll::Ready(Err(error)) => Err(error),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
