//! The `/chat` route's shape, shared by the server (which routes to rooms by it) and the
//! load generator (whose chat mode joins a room by it): the path, the room a request
//! that names none joins, and which room names are valid. Neither side owns it, so it
//! sits below both.

use std::fmt;

/// The room a `/chat` upgrade joins when it names none.
pub const DEFAULT_ROOM: &str = "lobby";

/// The path of the chat route.
pub const CHAT_PATH: &str = "/chat";

/// A chat room's name: 1 to [`RoomName::MAX_LEN`] RFC 3986 §2.3 unreserved characters,
/// which never need percent-encoding, so the name a page sends is the name it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomName<'a>(&'a str);

impl<'a> RoomName<'a> {
    /// The longest room name accepted.
    pub const MAX_LEN: usize = 64;

    /// The name, if `name` is a valid one.
    pub fn parse(name: &'a str) -> Option<RoomName<'a>> {
        let unreserved =
            |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        let valid = !name.is_empty() && name.len() <= Self::MAX_LEN && name.bytes().all(unreserved);
        valid.then_some(RoomName(name))
    }

    /// The name as it appeared in the request.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Display for RoomName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_1_to_64_unreserved_characters() {
        assert_eq!(
            RoomName::parse("a-b.c_d~9").map(|r| r.as_str()),
            Some("a-b.c_d~9")
        );
        assert!(RoomName::parse(&"r".repeat(RoomName::MAX_LEN)).is_some());
        for bad in [
            "",
            "a b",
            "a/b",
            "a%20b",
            "é",
            &"r".repeat(RoomName::MAX_LEN + 1),
        ] {
            assert_eq!(RoomName::parse(bad), None, "{bad:?}");
        }
        assert!(RoomName::parse(DEFAULT_ROOM).is_some());
    }
}
