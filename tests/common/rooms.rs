//! Chat checks shared by the tests of rooms past one process (`pubsub.rs`, `hosts.rs`).

use std::collections::HashMap;
use std::time::Duration;

use wsreactor::protocol::frame::OpCode;

use super::{op, Raw, IO_TIMEOUT};

/// Every member sends `each` messages (`sender:seq`, all senders interleaved); every
/// member must then get every message exactly once, each sender's in order.
pub fn chat_exactly_once(members: &mut [Raw], each: usize, tag: &str) {
    for seq in 0..each {
        for (i, m) in members.iter_mut().enumerate() {
            m.send_frame(true, OpCode::Text, format!("{tag}{i}:{seq}").as_bytes());
        }
    }
    let total = members.len() * each;
    for (me, m) in members.iter_mut().enumerate() {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for _ in 0..total {
            let frame = m.read_message();
            assert_eq!(frame.opcode, op::TEXT);
            let text = String::from_utf8(frame.payload).unwrap();
            let (sender, seq) = text
                .strip_prefix(tag)
                .and_then(|t| t.split_once(':'))
                .unwrap_or_else(|| panic!("member {me} got {text:?}"));
            let (sender, seq): (usize, usize) = (sender.parse().unwrap(), seq.parse().unwrap());
            let want = next.entry(sender).or_default();
            assert_eq!(
                seq, *want,
                "member {me}: sender {sender}'s messages out of order or twice"
            );
            *want += 1;
        }
        assert!(next.values().all(|&n| n == each), "member {me}: {next:?}");
    }
    for (me, m) in members.iter_mut().enumerate() {
        m.set_read_timeout(Duration::from_millis(200));
        assert!(
            m.try_read_frame().is_err(),
            "member {me} got a message twice"
        );
        m.set_read_timeout(IO_TIMEOUT);
    }
}
