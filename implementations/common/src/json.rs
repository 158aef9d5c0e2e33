//! JSON bodies, serialized per request with simd-json.

use bytes::{BufMut, Bytes, BytesMut};
pub use serde::Serialize;

use crate::{model::Message, reply::HELLO_WORLD};

/// Serializes any response value. Our models hold only integers and strings, which always
/// serialize, so a failure here is a programming error.
pub fn to_body<T: Serialize + ?Sized>(value: &T) -> Bytes {
    simd_json::serde::to_vec(value)
        .expect("models of integers and strings always serialize")
        .into()
}

/// Serializes any response value at the end of `body`, for frameworks that lend theirs.
pub fn write_into<T: Serialize + ?Sized>(value: &T, body: &mut BytesMut) {
    simd_json::serde::to_writer(body.writer(), value)
        .expect("models of integers and strings always serialize");
}

/// The JSON test's object, created per request.
pub fn hello_message() -> Message {
    Message {
        message: HELLO_WORLD,
    }
}

/// The JSON test's body, from a freshly created object.
pub fn hello_world() -> Bytes {
    to_body(&hello_message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::World;

    #[test]
    fn bodies_are_exact() {
        assert_eq!(&hello_world()[..], br#"{"message":"Hello, World!"}"#);
        let world = World {
            id: 7,
            random_number: 1234,
        };
        assert_eq!(&to_body(&world)[..], br#"{"id":7,"randomNumber":1234}"#);
        let mut lent = BytesMut::from(&b"kept"[..]);
        write_into(&[world][..], &mut lent);
        assert_eq!(&lent[..], br#"kept[{"id":7,"randomNumber":1234}]"#);
        assert_eq!(
            &to_body(&[world, world][..])[..],
            br#"[{"id":7,"randomNumber":1234},{"id":7,"randomNumber":1234}]"#
        );
    }
}
