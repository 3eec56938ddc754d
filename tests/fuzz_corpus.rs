//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz
//! targets' own bodies (`wsreactor::testkit`), so every `cargo test` re-checks the
//! inputs the fuzzer found interesting, and every input that once failed a check (kept
//! under a name saying what it was, e.g. `connection/chat-message-then-violation`; the
//! runs in fuzz/README.md found no crash), without running the fuzzer itself.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use wsreactor::testkit::{connection, frame, http_head, tls};

/// Runs `target` on every file in `fuzz/corpus/<name>/` and fails naming each file
/// whose checks panic.
fn replay(name: &str, target: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{name}: the corpus is missing");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("readable corpus file");
            catch_unwind(AssertUnwindSafe(|| target(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "{name}: checks failed on {failed:#?}");
}

#[test]
fn http_head_corpus() {
    replay("http_head", http_head::http_head);
}

#[test]
fn frame_corpus() {
    replay("frame", frame::frame);
}

#[test]
fn connection_corpus() {
    replay("connection", connection::connection);
}

/// The hand-written seeds mean what their names say (so the input layout in
/// `wsreactor::testkit` is the one the corpus was written in).
#[test]
fn seeds_decode_as_named() {
    use wsreactor::chat_route::RoomName;
    use wsreactor::protocol::frame::OpCode;
    use wsreactor::protocol::handshake::{check_request, Policy};
    use wsreactor::protocol::http::{parse_request, Header, MAX_HEADERS};
    use wsreactor::protocol::receiver::{ReceiverConfig, Role};
    use wsreactor::server::routes::{route, Route};
    use wsreactor::testkit::frame::{receive, Seen};
    use wsreactor::testkit::Input;

    let read = |path: &str| std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path));
    let data = read("fuzz/corpus/http_head/seed-upgrade").unwrap();
    let input = Input::new(&data);
    let mut storage = [Header::default(); MAX_HEADERS];
    let (req, n) = parse_request(input.payload, 0, &mut storage)
        .unwrap()
        .unwrap();
    assert!(matches!(
        check_request(&req, &Policy::default()),
        Ok(Some(_))
    ));
    assert_eq!(
        route(req.target, true),
        Ok(Route::Chat(RoomName::parse("a").unwrap()))
    );
    assert_eq!(
        input.payload.len() - n,
        11,
        "a masked frame follows the head"
    );

    let data = read("fuzz/corpus/frame/seed-text").unwrap();
    let input = Input::new(&data);
    let config = ReceiverConfig {
        role: Role::Server,
        max_message_size: 1 << 20,
    };
    assert_eq!(
        receive(&config, input.payload, &[input.payload.len()]),
        vec![
            Seen::Message(OpCode::Text, b"Hello".to_vec()),
            Seen::Close(Some(1000), "bye".into())
        ]
    );
}

#[test]
fn tls_corpus() {
    replay("tls", tls::tls);
}
