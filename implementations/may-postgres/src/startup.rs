//! Opening a connection: the socket, the startup message with the session's settings, and the
//! authentication exchange (SCRAM-SHA-256, md5 or a cleartext password) until the server is
//! ready for queries.

use std::{
    io::{self, Write},
    net::ToSocketAddrs,
    os::fd::AsRawFd,
    time::Duration,
};

use bytes::BytesMut;
use may::net::TcpStream;
use postgres_protocol::{
    authentication::{md5_hash, sasl},
    message::{backend, frontend},
};

use crate::{
    Config, Error, Worker,
    connection::{encode_error, read_more},
    rows::database_error,
};

pub(crate) fn open_socket(config: &Config, timeout: Duration) -> Result<TcpStream, Error> {
    let addresses = (config.host.as_str(), config.port)
        .to_socket_addrs()
        .map_err(|error| Error::Connect(format!("resolving {}: {error}", config.host)))?;
    let mut last_error = format!("{} resolves to no address", config.host);
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return match config.worker {
                    Some(worker) => on_worker(stream, worker)
                        .map_err(|error| Error::Connect(format!("{address}: {error}"))),
                    None => Ok(stream),
                };
            }
            Err(error) => last_error = format!("{address}: {error}"),
        }
    }
    Err(Error::Connect(last_error))
}

/// How many duplicates of a socket [`on_worker`] tries before it settles for the socket as it is.
const RENUMBER_ATTEMPTS: usize = 64;

/// `stream` under a descriptor that may polls on `worker`. A duplicate takes the lowest free
/// descriptor, so while the earlier ones are held, successive duplicates count upwards and one
/// soon has the wanted remainder; the others and the original are closed when dropped (which
/// takes them off may's event loops), the socket staying open under the one kept. Descriptors
/// opened and closed by other threads meanwhile only cost more attempts; should all of them miss,
/// the socket stays where it is, slower but correct.
pub(crate) fn on_worker(stream: TcpStream, worker: Worker) -> io::Result<TcpStream> {
    let belongs = |stream: &TcpStream| {
        usize::try_from(stream.as_raw_fd()).is_ok_and(|fd| fd % worker.count == worker.index)
    };
    if worker.count < 2 || belongs(&stream) {
        return Ok(stream);
    }
    let mut missed = Vec::new();
    for _ in 0..RENUMBER_ATTEMPTS {
        let duplicate = stream.try_clone()?;
        if belongs(&duplicate) {
            return Ok(duplicate);
        }
        missed.push(duplicate);
    }
    Ok(stream)
}

/// Sends the startup message and answers the server's authentication requests until it is
/// ready for queries.
pub(crate) fn startup(stream: &mut TcpStream, config: &Config) -> Result<(), Error> {
    let mut out = BytesMut::new();
    let fixed = [
        ("user", config.user.as_str()),
        ("database", config.database.as_str()),
        ("client_encoding", "UTF8"),
        ("application_name", "tfb-may-postgres"),
    ];
    let settings = config
        .settings
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()));
    frontend::startup_message(fixed.into_iter().chain(settings), &mut out)
        .map_err(|error| Error::Config(error.to_string()))?;
    let mut input = BytesMut::with_capacity(4096);
    let mut scratch = [0; 4096];
    let mut scram = None;
    loop {
        if !out.is_empty() {
            stream.write_all(&out).map_err(startup_io_error)?;
            out.clear();
        }
        let message = loop {
            match backend::Message::parse(&mut input) {
                Ok(Some(message)) => break message,
                Ok(None) => {
                    read_more(stream, &mut input, &mut scratch).map_err(startup_io_error)?;
                }
                Err(error) => return Err(Error::Protocol(error.to_string())),
            }
        };
        let password = config.password.as_bytes();
        match message {
            backend::Message::AuthenticationOk
            | backend::Message::ParameterStatus(_)
            | backend::Message::BackendKeyData(_)
            | backend::Message::NoticeResponse(_) => {}
            backend::Message::ReadyForQuery(_) => return Ok(()),
            backend::Message::AuthenticationCleartextPassword => {
                frontend::password_message(password, &mut out).map_err(encode_error)?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(config.user.as_bytes(), password, body.salt());
                frontend::password_message(hash.as_bytes(), &mut out).map_err(encode_error)?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut offered = Vec::new();
                let mut mechanisms = body.mechanisms();
                while let Some(mechanism) =
                    fallible_iterator::FallibleIterator::next(&mut mechanisms)
                        .map_err(|error| Error::Protocol(error.to_string()))?
                {
                    offered.push(mechanism.to_owned());
                }
                if !offered
                    .iter()
                    .any(|mechanism| mechanism == sasl::SCRAM_SHA_256)
                {
                    return Err(Error::Authentication(format!(
                        "the server offers SASL mechanisms {offered:?}; this client speaks {}",
                        sasl::SCRAM_SHA_256
                    )));
                }
                let client = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, client.message(), &mut out)
                    .map_err(encode_error)?;
                scram = Some(client);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let client = scram
                    .as_mut()
                    .ok_or_else(|| Error::Protocol("SASL continue before start".to_owned()))?;
                client
                    .update(body.data())
                    .map_err(|error| Error::Authentication(error.to_string()))?;
                frontend::sasl_response(client.message(), &mut out).map_err(encode_error)?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                scram
                    .take()
                    .ok_or_else(|| Error::Protocol("SASL final before start".to_owned()))?
                    .finish(body.data())
                    .map_err(|error| {
                        Error::Authentication(format!("the server's SCRAM proof: {error}"))
                    })?;
            }
            backend::Message::ErrorResponse(body) => {
                return Err(match database_error(&body) {
                    // Class 28: invalid authorization (wrong password, no pg_hba entry).
                    Error::Database { code, message } if code.starts_with("28") => {
                        Error::Authentication(message)
                    }
                    Error::Database { code, message } => {
                        Error::Connect(format!("{message} (SQLSTATE {code})"))
                    }
                    other => other,
                });
            }
            _ => {
                return Err(Error::Authentication(
                    "the server asked for an authentication method this client does not speak \
                     (supported: SCRAM-SHA-256, md5, password)"
                        .to_owned(),
                ));
            }
        }
    }
}

fn startup_io_error(error: io::Error) -> Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Error::Connect("the server did not finish the startup in time".to_owned())
        }
        _ => Error::Connect(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Every worker of two, three and four gets a socket it polls, and the renumbered socket is
    /// the same connection: what is written through it arrives at the other end.
    #[test]
    fn renumbers_a_socket_onto_each_worker() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        for count in 2..=4 {
            for index in 0..count {
                let stream = TcpStream::connect(address).unwrap();
                let (mut accepted, _) = listener.accept().unwrap();
                let mut renumbered = on_worker(stream, Worker { index, count }).unwrap();
                let fd = usize::try_from(renumbered.as_raw_fd()).unwrap();
                assert_eq!(
                    fd % count,
                    index,
                    "descriptor {fd} for worker {index} of {count}"
                );
                renumbered.write_all(b"ping").unwrap();
                let mut received = [0; 4];
                accepted.read_exact(&mut received).unwrap();
                assert_eq!(&received, b"ping");
            }
        }
    }
}
