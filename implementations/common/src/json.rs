//! JSON bodies, serialized per request with simd-json.

use bytes::Bytes;
pub use serde::Serialize;

use crate::model::Message;

/// Serializes any response value. Our models hold only integers and strings, which always
/// serialize, so a failure here is a programming error.
pub fn to_body<T: Serialize + ?Sized>(value: &T) -> Bytes {
    simd_json::serde::to_vec(value)
        .expect("models of integers and strings always serialize")
        .into()
}

/// The JSON test's body, from a freshly created object.
pub fn hello_world() -> Bytes {
    to_body(&Message {
        message: "Hello, World!",
    })
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
        assert_eq!(
            &to_body(&[world, world][..])[..],
            br#"[{"id":7,"randomNumber":1234},{"id":7,"randomNumber":1234}]"#
        );
    }
}
