//! `wsreactor load --chat`: the load generator's chat mode against the real server.
//! Every member joins one room, one sends numbered messages, and every member must
//! receive every message in order and intact; the report and the exit status say so,
//! and the server's own counters must agree with them.

mod common;

use std::net::TcpStream;
use std::process::ExitStatus;
use std::time::Duration;

use common::{upgrade_request, Raw, Server};

/// A load run that has not finished by then is hung: it is killed and the test fails.
const LOAD_TIMEOUT: Duration = Duration::from_secs(180);

/// A finished `wsreactor load --json` run and its report.
struct LoadRun {
    status: ExitStatus,
    report: serde_json::Value,
    stderr: String,
}

/// Runs `wsreactor load --addr SERVER --json ARGS…` to completion.
fn load(server: &Server, args: &[&str]) -> LoadRun {
    let addr = server.addr.to_string();
    let args: Vec<&str> = std::iter::once("--json")
        .chain(args.iter().copied())
        .collect();
    let run = common::run_load(&addr, &args, LOAD_TIMEOUT);
    LoadRun {
        status: run.status,
        report: run.report(),
        stderr: run.stderr,
    }
}

/// Asserts that a chat run succeeded with `members` members each receiving all of
/// `messages` messages.
fn assert_every_delivery(run: &LoadRun, members: u64, messages: u64) {
    let r = &run.report;
    assert!(
        run.status.success(),
        "exit status {}:\n{r:#}\n{}",
        run.status,
        run.stderr
    );
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["failed"], 0, "{r:#}");
    let chat = &r["chat"];
    assert_eq!(chat["members"], members, "{chat:#}");
    assert_eq!(chat["members_complete"], members, "{chat:#}");
    assert_eq!(chat["messages_requested"], messages, "{chat:#}");
    assert_eq!(chat["messages_sent"], messages, "{chat:#}");
    assert_eq!(chat["deliveries_expected"], members * messages, "{chat:#}");
    assert_eq!(chat["deliveries_received"], members * messages, "{chat:#}");
    assert_eq!(chat["deliveries_missing"], 0, "{chat:#}");
    // One latency sample per delivery.
    assert_eq!(chat["delivery_us"]["count"], members * messages, "{chat:#}");
    // Every member closed with a clean closing handshake afterwards.
    assert_eq!(r["closed_clean"], members, "{r:#}");
}

#[test]
fn every_member_receives_every_message_and_the_server_agrees() {
    let server = Server::start();
    let run = load(
        &server,
        &[
            "--connections",
            "50",
            "--chat",
            "t",
            "--chat-messages",
            "20",
        ],
    );
    assert_every_delivery(&run, 50, 20);
    assert_eq!(run.report["path"], "/chat?room=t");

    let stats = server.stats();
    assert_eq!(stats["messages_in_total"], 20, "{stats:#}");
    // Each message once per member, the sender included.
    assert_eq!(stats["messages_out_total"], 50 * 20, "{stats:#}");
    assert_eq!(stats["slow_members_dropped_total"], 0, "{stats:#}");
    assert_eq!(stats["closes_by_code"]["1000"], 50, "{stats:#}");
    assert_eq!(
        stats["rooms"], 0,
        "the room is gone with its last member: {stats:#}"
    );
}

#[test]
fn a_paced_run_with_binary_and_text_messages_in_pieces_delivers_everything() {
    // 100 KiB messages arrive in many reads; odd messages are Binary, even ones Text.
    let server = Server::start();
    let run = load(
        &server,
        &[
            "--connections",
            "10",
            "--chat",
            "paced",
            "--chat-messages",
            "12",
            "--chat-rate",
            "200",
            "--chat-window",
            "3",
            "--message-size",
            "102400",
        ],
    );
    assert_every_delivery(&run, 10, 12);
    assert_eq!(run.report["chat"]["window"], 3);
    assert_eq!(run.report["chat"]["rate"], 200.0);
}

/// Joins `room` on a connection whose receive buffer is small, and never reads from
/// it: a member stuck from the server's point of view.
fn stuck_member(server: &Server, room: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // Set before connecting, so the window the kernel advertises stays small.
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut raw = Raw::from_stream(socket.into());
    raw.send(&upgrade_request(&format!("/chat?room={room}"), ""));
    raw.read_response().assert_switching();
    raw.stream
}

#[test]
fn a_member_that_stops_reading_is_dropped_and_never_stalls_the_room() {
    let server = Server::start();
    let stuck = stuck_member(&server, "r");
    // 12 MiB to every member: more than the kernel buffers of the stuck connection and
    // the server's slow-member limit together, so the server must drop it. The load's
    // own members are never more than a window (4 × 64 KiB) behind.
    let run = load(
        &server,
        &[
            "--connections",
            "20",
            "--chat",
            "r",
            "--chat-messages",
            "192",
            "--chat-window",
            "4",
            "--message-size",
            "65536",
        ],
    );
    assert_every_delivery(&run, 20, 192);
    let stats = server.stats();
    assert_eq!(stats["slow_members_dropped_total"], 1, "{stats:#}");
    // The 20 members' deliveries, and the stuck member's until it was dropped.
    let out = stats["messages_out_total"].as_u64().unwrap();
    assert!((20 * 192..21 * 192).contains(&out), "{stats:#}");
    drop(stuck);
}
