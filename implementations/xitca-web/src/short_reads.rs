//! The connection type xitca-http serves on: a Tokio TCP stream whose reads stop at a short read.
//!
//! xitca-http's own stream on Tokio reads until the socket says `WouldBlock`, so every request
//! costs a second `recvfrom` that finds nothing (perf: 2.00 per `/json` request, against 1.00 for
//! hyper and actix on the same load). A read that fills less than the room it was given has
//! drained the socket, as Tokio's own `poll_read` knows: it forgets the readiness it saw before
//! the read, so the next read waits for the next event instead of asking the kernel. The readiness
//! forgotten is the one seen before the read, so data that arrives meanwhile still wakes the
//! connection. xitca-http takes its stream from a TLS acceptor, so this one accepts plain TCP
//! into [`ShortReads`].

use std::{convert::Infallible, io, net::Shutdown, slice};

use tokio::{io::Interest, net::TcpStream};
use xitca_io_http::{
    io::{AsyncBufRead, AsyncBufWrite, BoundedBuf, BoundedBufMut},
    net::TcpStream as XitcaTcpStream,
};
use xitca_web::service::Service;

/// Builds the acceptor once per worker (xitca-http's TLS acceptor factory).
#[derive(Clone, Copy)]
pub struct ShortReadAcceptor;

impl Service for ShortReadAcceptor {
    type Response = ShortReadAcceptor;
    type Error = Infallible;

    async fn call(&self, (): ()) -> Result<Self::Response, Self::Error> {
        Ok(ShortReadAcceptor)
    }
}

impl Service<XitcaTcpStream> for ShortReadAcceptor {
    type Response = ShortReads;
    /// xitca-http takes no reason from an acceptor of plain TCP: a stream that cannot be
    /// registered again (the kernel out of memory) is dropped.
    type Error = ();

    async fn call(&self, stream: XitcaTcpStream) -> Result<Self::Response, Self::Error> {
        // xitca's stream does not lend its Tokio stream; taking it back out and registering it
        // again costs two epoll_ctl calls per connection, not per request.
        let stream = stream.into_std().and_then(TcpStream::from_std);
        stream.map(ShortReads).map_err(drop)
    }
}

pub struct ShortReads(TcpStream);

impl AsyncBufRead for ShortReads {
    async fn read<B>(&self, mut buf: B) -> (io::Result<usize>, B)
    where
        B: BoundedBufMut,
    {
        let init = buf.bytes_init();
        let room = buf.bytes_total() - init;
        // SAFETY: the slice is the buffer's spare capacity, which `try_read` only writes into,
        // from its start; `set_init` below covers exactly the bytes it reports.
        let spare = unsafe { slice::from_raw_parts_mut(buf.stable_mut_ptr().add(init), room) };
        let result = loop {
            if spare.is_empty() {
                break Ok(0);
            }
            let mut short_read = None;
            let attempt = self.0.try_io(Interest::READABLE, || {
                let read = self.0.try_read(spare)?;
                if read > 0 && read < spare.len() {
                    short_read = Some(read);
                    // Reported as `WouldBlock` only so that Tokio forgets this readiness.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(read)
            });
            match (attempt, short_read) {
                (_, Some(read)) => break Ok(read),
                (Ok(read), None) => break Ok(read),
                (Err(error), None) if error.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(error) = self.0.readable().await {
                        break Err(error);
                    }
                }
                (Err(error), None) => break Err(error),
            }
        };
        if let Ok(read) = result {
            // SAFETY: `try_read` initialised `read` bytes at the start of the spare capacity.
            unsafe { buf.set_init(init + read) };
        }
        (result, buf)
    }
}

impl AsyncBufWrite for ShortReads {
    fn write<B>(&self, buf: B) -> impl Future<Output = (io::Result<usize>, B)>
    where
        B: BoundedBuf,
    {
        AsyncBufWrite::write(&self.0, buf)
    }

    fn shutdown(self, direction: Shutdown) -> impl Future<Output = io::Result<()>> {
        AsyncBufWrite::shutdown(self.0, direction)
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        net::{TcpListener, TcpStream as StdTcpStream},
        time::Duration,
    };

    use super::*;

    /// Long enough never to decide a passing run on a loaded machine; it only turns a connection
    /// that is never woken again into a failure instead of a hang.
    const NEVER_WOKEN: Duration = Duration::from_secs(60);

    fn connected_pair() -> (StdTcpStream, ShortReads) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = StdTcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, ShortReads(TcpStream::from_std(server).unwrap()))
    }

    async fn read(stream: &ShortReads, room: usize) -> Vec<u8> {
        let read = stream.read(Vec::with_capacity(room));
        let (result, buf) = tokio::time::timeout(NEVER_WOKEN, read)
            .await
            .expect("the read was never woken");
        assert_eq!(result.unwrap(), buf.len());
        buf
    }

    #[tokio::test]
    async fn a_short_read_still_wakes_for_the_next_data() {
        let (mut client, stream) = connected_pair();
        client.write_all(b"GET /json").unwrap();
        assert_eq!(read(&stream, 64).await, b"GET /json");
        // The readiness of the first segment is forgotten; this one must bring its own.
        let later = tokio::task::spawn_blocking(move || {
            client.write_all(b" HTTP/1.1").unwrap();
            client
        });
        assert_eq!(read(&stream, 64).await, b" HTTP/1.1");
        drop(later.await.unwrap());
        assert_eq!(read(&stream, 64).await, b"", "the peer's close reads as 0");
    }

    #[tokio::test]
    async fn a_full_read_keeps_the_readiness_for_the_rest() {
        let (mut client, stream) = connected_pair();
        client.write_all(b"0123456789").unwrap();
        // Wait until all ten bytes are in, so the first read fills its four bytes of room.
        let mut peeked = [0; 10];
        while stream.0.peek(&mut peeked).await.unwrap() < peeked.len() {
            tokio::task::yield_now().await;
        }
        assert_eq!(read(&stream, 4).await, b"0123");
        // Nothing new arrives: only the readiness kept from the full read can finish this one.
        assert_eq!(read(&stream, 64).await, b"456789");
    }
}
