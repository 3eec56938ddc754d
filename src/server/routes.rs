//! The server's routes: where a request the protocol accepted leads. Any path with a
//! valid upgrade opens a WebSocket (`/chat`, with an optional `?room=NAME`, joins a
//! room; every other path echoes); without one, `/` is the demo page, `/stats` the
//! counters as JSON, `/metrics` the same for Prometheus, `/dashboard` a live view of
//! them, and anything else 404. The protocol core knows none of this.

use crate::chat_route::{RoomName, CHAT_PATH, DEFAULT_ROOM};
use crate::protocol::handshake::Refusal;
use crate::protocol::http::{split_resource, Status};

/// Where a request leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// A WebSocket that sends every message back to its sender.
    Echo,
    /// A WebSocket that sends every message to every member of the room.
    Chat(RoomName<'a>),
    /// `GET /`: the demo page.
    Page,
    /// `GET /stats`: the counters as JSON.
    Stats,
    /// `GET /metrics`: the counters in the Prometheus text format.
    Metrics,
    /// `GET /dashboard`: a page that shows the counters live.
    Dashboard,
}

/// 404: a plain GET for a page that does not exist.
pub const NOT_FOUND: Refusal = Refusal {
    status: Status::NOT_FOUND,
    headers: &[],
    name: "not_found",
    reason: "no such page",
};

/// 400: a `/chat` upgrade naming an invalid room.
const BAD_ROOM: Refusal = Refusal {
    status: Status::BAD_REQUEST,
    headers: &[],
    name: "bad_upgrade",
    reason: "room must be 1 to 64 letters, digits, '-', '.', '_' or '~'",
};

/// Routes a request for `target` (path and query), an upgrade or not.
pub fn route(target: &str, upgrade: bool) -> Result<Route<'_>, Refusal> {
    let (path, query) = split_resource(target);
    match (upgrade, path) {
        (true, CHAT_PATH) => {
            let room = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("room="))
                .unwrap_or(DEFAULT_ROOM);
            RoomName::parse(room).map(Route::Chat).ok_or(BAD_ROOM)
        }
        (true, _) => Ok(Route::Echo),
        (false, "/") => Ok(Route::Page),
        (false, "/stats") => Ok(Route::Stats),
        (false, "/metrics") => Ok(Route::Metrics),
        (false, "/dashboard") => Ok(Route::Dashboard),
        (false, _) => Err(NOT_FOUND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_upgrade_on_any_path() {
        assert_eq!(route("/echo", true), Ok(Route::Echo));
        assert_eq!(route("/anything/else?x=1", true), Ok(Route::Echo));
    }

    #[test]
    fn chat_upgrades_name_their_room() {
        let chat = |target: &str| route(target, true).map(|r| format!("{r:?}"));
        assert_eq!(chat("/chat").unwrap(), r#"Chat(RoomName("lobby"))"#);
        assert_eq!(
            chat("/chat?room=a-b.c_d~9").unwrap(),
            r#"Chat(RoomName("a-b.c_d~9"))"#
        );
        assert_eq!(
            chat("/chat?x=1&room=r2&room=r3").unwrap(),
            r#"Chat(RoomName("r2"))"#
        );
        assert_eq!(chat("/chat/?room=r").unwrap(), "Echo");
        for bad in ["/chat?room=", "/chat?room=a%20b", "/chat?room=a/b"] {
            assert_eq!(chat(bad).unwrap_err().status.0, 400, "{bad}");
        }
        let long = format!("/chat?room={}", "r".repeat(RoomName::MAX_LEN));
        assert!(chat(&long).is_ok());
        assert_eq!(chat(&format!("{long}r")).unwrap_err().status.0, 400);
    }

    #[test]
    fn plain_requests_route_to_pages_or_404() {
        assert_eq!(route("/", false), Ok(Route::Page));
        assert_eq!(route("/stats", false), Ok(Route::Stats));
        assert_eq!(route("/metrics", false), Ok(Route::Metrics));
        assert_eq!(route("/dashboard?x=1", false), Ok(Route::Dashboard));
        assert_eq!(route("/metrics/", false).unwrap_err().status.0, 404);
        assert_eq!(route("/nope", false).unwrap_err().status.0, 404);
        assert_eq!(route("/nope", false).unwrap_err().name, "not_found");
    }
}
