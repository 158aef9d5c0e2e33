//! Statement parameters going out, and the rows of one statement's response coming back, decoded
//! in place from the bytes the server sent.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend;
use postgres_protocol::types::{ArrayDimension, array_to_sql, int4_to_sql};

use crate::Error;

/// Type OIDs of the types this client encodes and decodes.
pub(crate) mod oid {
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const VARCHAR: u32 = 1043;
    pub const INT4_ARRAY: u32 = 1007;
}

/// One statement parameter, sent in binary form.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int4(i32),
    Int4Array(&'a [i32]),
}

impl Param<'_> {
    pub(crate) fn type_oid(&self) -> u32 {
        match self {
            Param::Int4(_) => oid::INT4,
            Param::Int4Array(_) => oid::INT4_ARRAY,
        }
    }

    pub(crate) fn type_name(type_oid: u32) -> String {
        match type_oid {
            oid::INT4 => "int4".to_owned(),
            oid::INT4_ARRAY => "int4[]".to_owned(),
            oid::TEXT => "text".to_owned(),
            oid::VARCHAR => "varchar".to_owned(),
            other => format!("type oid {other}"),
        }
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) -> Result<(), Error> {
        match *self {
            Param::Int4(value) => int4_to_sql(value, buf),
            Param::Int4Array(values) => {
                let len = i32::try_from(values.len())
                    .map_err(|_| Error::Type("array too long".to_owned()))?;
                let dimension = ArrayDimension {
                    len,
                    lower_bound: 1,
                };
                array_to_sql(
                    [dimension],
                    oid::INT4,
                    values.iter().copied(),
                    |value, buf| {
                        int4_to_sql(value, buf);
                        Ok(postgres_protocol::IsNull::No)
                    },
                    buf,
                )
                .map_err(|error| Error::Type(error.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Walks the backend messages in `bytes`: `(tag, payload)` pairs. The rows' hot path counts and
/// decodes DataRows in place with it; everything else is parsed by `postgres-protocol`.
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.rest.split_first()?;
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        // The length counts itself but not the tag; only whole messages are handed over.
        let payload = rest.get(4..len)?;
        self.rest = &rest[len..];
        Some((tag, payload))
    }
}

/// The SQLSTATE and message of an ErrorResponse.
pub(crate) fn database_error(body: &backend::ErrorResponseBody) -> Error {
    let (mut code, mut message) = (String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(field)) = fields.next() {
        match field.type_() {
            b'C' => code = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(field.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Error::Database { code, message }
}

/// An ErrorResponse met while walking a response's messages, parsed by `postgres-protocol`.
pub(crate) fn error_in_response(payload: &[u8]) -> Error {
    let mut message = BytesMut::with_capacity(payload.len() + 5);
    message.put_u8(b'E');
    message.put_u32(payload.len() as u32 + 4);
    message.put_slice(payload);
    match backend::Message::parse(&mut message) {
        Ok(Some(backend::Message::ErrorResponse(body))) => database_error(&body),
        _ => Error::Protocol("malformed ErrorResponse".to_owned()),
    }
}

/// The rows one statement returned, and the row count its command tag reported.
#[derive(Debug, Clone)]
pub struct Rows {
    columns: Arc<[u32]>,
    body: Bytes,
    len: usize,
    affected: u64,
}

impl Rows {
    /// Checks a complete response (through ReadyForQuery) and counts its rows; a server error in
    /// it becomes [`Error::Database`].
    pub(crate) fn new(columns: Arc<[u32]>, body: Bytes) -> Result<Self, Error> {
        let mut len = 0;
        let mut affected = 0;
        for (tag, payload) in Messages::new(&body) {
            match tag {
                b'E' => return Err(error_in_response(payload)),
                b'D' => len += 1,
                b'C' => {
                    // "SELECT 3", "UPDATE 20", "INSERT 0 1": the count is the last word.
                    let text = payload.strip_suffix(&[0]).unwrap_or(payload);
                    affected = std::str::from_utf8(text)
                        .ok()
                        .and_then(|tag| tag.rsplit(' ').next())
                        .and_then(|count| count.parse().ok())
                        .unwrap_or(0);
                }
                _ => {}
            }
        }
        Ok(Self {
            columns,
            body,
            len,
            affected,
        })
    }

    /// The number of rows returned.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of rows the command reported (`UPDATE 20` gives 20).
    pub fn affected(&self) -> u64 {
        self.affected
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        Messages::new(&self.body)
            .filter(|(tag, _)| *tag == b'D')
            .map(|(_, payload)| Row {
                columns: &self.columns,
                payload,
            })
    }

    /// The only row, or an error saying how many there were.
    pub fn one(&self) -> Result<Row<'_>, Error> {
        match (self.len, self.iter().next()) {
            (1, Some(row)) => Ok(row),
            (count, _) => Err(Error::Type(format!("expected one row, got {count}"))),
        }
    }
}

/// One row; its values borrow from the response.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [u32],
    payload: &'a [u8],
}

impl<'a> Row<'a> {
    /// The raw binary value of column `index`, after checking its type is one of `accepted`.
    fn value(&self, index: usize, accepted: &[u32]) -> Result<&'a [u8], Error> {
        let type_oid = *self.columns.get(index).ok_or_else(|| {
            Error::Type(format!(
                "column {index} asked for, the row has {}",
                self.columns.len()
            ))
        })?;
        if !accepted.contains(&type_oid) {
            return Err(Error::Type(format!(
                "column {index} is {}, not {}",
                Param::type_name(type_oid),
                Param::type_name(accepted[0])
            )));
        }
        let truncated = || Error::Protocol("truncated DataRow".to_owned());
        let mut rest = self.payload.get(2..).ok_or_else(truncated)?;
        for column in 0..=index {
            let len = i32::from_be_bytes(
                rest.get(..4)
                    .ok_or_else(truncated)?
                    .try_into()
                    .expect("four bytes"),
            );
            rest = &rest[4..];
            if len < 0 {
                if column == index {
                    return Err(Error::Type(format!("column {index} is NULL")));
                }
                continue;
            }
            let (value, tail) = rest.split_at_checked(len as usize).ok_or_else(truncated)?;
            if column == index {
                return Ok(value);
            }
            rest = tail;
        }
        unreachable!("the loop returns at column == index")
    }

    pub fn get_i32(&self, index: usize) -> Result<i32, Error> {
        let value = self.value(index, &[oid::INT4])?;
        let bytes = value
            .try_into()
            .map_err(|_| Error::Protocol(format!("int4 of {} bytes", value.len())))?;
        Ok(i32::from_be_bytes(bytes))
    }

    pub fn get_str(&self, index: usize) -> Result<&'a str, Error> {
        let value = self.value(index, &[oid::TEXT, oid::VARCHAR])?;
        std::str::from_utf8(value)
            .map_err(|_| Error::Protocol(format!("column {index} is not valid UTF-8")))
    }
}
