//! Opening a connection: the socket, the startup message with the session's settings, and the
//! authentication exchange (SCRAM-SHA-256, md5 or a cleartext password) until the server is
//! ready for queries.

use std::{
    io::{self, Write},
    net::ToSocketAddrs,
    time::Duration,
};

use bytes::BytesMut;
use may::net::TcpStream;
use postgres_protocol::{
    authentication::{md5_hash, sasl},
    message::{backend, frontend},
};

use crate::{
    Config, Error,
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
                return Ok(stream);
            }
            Err(error) => last_error = format!("{address}: {error}"),
        }
    }
    Err(Error::Connect(last_error))
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
