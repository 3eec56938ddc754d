//! Rooms past one process: across `--workers 2` with and without `--pubsub`, across two
//! server processes (two "hosts") on one Redis, a plain PUBLISH from another service,
//! Redis killed and restarted mid-chat, stopped (SIGSTOP) mid-chat, and absent at start.
//! Each test runs its own `redis-server` on a free port (see `common::redis`).
//!
//! The guarantee checked: every member connected throughout gets every message exactly
//! once, each publisher's messages in the order they were sent.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::redis::{free_port, Redis};
use common::rooms::chat_exactly_once;
use common::{eventually, op, Raw, Server};
use wsreactor::protocol::frame::OpCode;

const ROOM: &str = "/chat?room=lobby";
const CHANNEL: &str = "wsreactor:room:lobby";
const WAIT: Duration = Duration::from_secs(15);

/// Opens members on `servers` in turn until `spread` says they span what they must.
fn members_on(servers: &[&Server], n: usize) -> Vec<Raw> {
    (0..n)
        .map(|i| servers[i % servers.len()].open_path(ROOM))
        .collect()
}

/// Opens members on a `--workers 2` server until both workers have some (the kernel
/// spreads connections by a hash of their addresses), as the rooms gauge shows.
fn members_on_both_workers(server: &Server) -> Vec<Raw> {
    let mut members = Vec::new();
    for _ in 0..12 {
        members.extend(members_on(&[server], 2));
        if eventually(Duration::from_secs(3), || {
            (server.stats()["rooms"] == 2).then_some(())
        })
        .is_some()
        {
            return members;
        }
    }
    panic!("24 members and all of them on one worker");
}

/// Waits until `n` connections subscribe to the room's channel.
fn wait_subscribers(redis: &Redis, n: u64) {
    eventually(WAIT, || (redis.subscribers(CHANNEL) == n).then_some(()))
        .unwrap_or_else(|| panic!("{} subscribers, not {n}", redis.subscribers(CHANNEL)));
}

/// Waits until `/stats` shows `field` at least `n`.
fn wait_stat(server: &Server, field: &str, n: u64) -> serde_json::Value {
    eventually(WAIT, || {
        let stats = server.stats();
        (stats[field].as_u64() >= Some(n)).then_some(stats)
    })
    .unwrap_or_else(|| panic!("{field} never reached {n}: {}", server.stats()))
}

#[test]
fn a_room_is_whole_across_workers_without_pubsub() {
    let server = Server::with_args(&["--workers", "2"]);
    wait_stat(&server, "pubsub_up", 2);
    let mut members = members_on_both_workers(&server);
    chat_exactly_once(&mut members, 20, "w");
    let stats = wait_stat(&server, "pubsub_received_total", 1);
    assert_eq!(stats["pubsub_unpublished_total"], 0, "{stats}");
}

#[test]
fn a_room_is_whole_across_workers_through_redis() {
    let redis = Redis::start();
    let server = Server::with_args(&["--workers", "2", "--pubsub", &redis.url()]);
    let mut members = members_on_both_workers(&server);
    wait_subscribers(&redis, 2);
    chat_exactly_once(&mut members, 20, "r");
    let stats = wait_stat(&server, "pubsub_received_total", 1);
    assert_eq!(stats["pubsub_unpublished_total"], 0, "{stats}");
    // The last member of the room on a worker leaving unsubscribes that worker.
    drop(members);
    wait_subscribers(&redis, 0);
}

#[test]
fn two_servers_on_one_redis_share_their_rooms() {
    let redis = Redis::start();
    let a = Server::with_args(&["--pubsub", &redis.url()]);
    let b = Server::with_args(&["--pubsub", &redis.url()]);
    let mut members = members_on(&[&a, &b], 6);
    wait_subscribers(&redis, 2);
    chat_exactly_once(&mut members, 30, "h");
    for server in [&a, &b] {
        let stats = server.stats();
        assert_eq!(stats["pubsub_published_total"], 90, "{stats}");
        assert_eq!(stats["pubsub_received_total"], 90, "{stats}");
    }
}

#[test]
fn a_plain_publish_from_another_service_reaches_the_room() {
    let redis = Redis::start();
    let server = Server::with_args(&["--pubsub", &redis.url()]);
    let mut member = server.open_path(ROOM);
    let mut elsewhere = server.open_path("/chat?room=elsewhere");
    wait_subscribers(&redis, 1);
    assert_eq!(
        redis
            .cli(&["PUBLISH", CHANNEL, "from the billing service ✓"])
            .trim(),
        "1"
    );
    member.expect_message(op::TEXT, "from the billing service ✓".as_bytes());
    // Bytes that are not UTF-8 cannot be a text message: they come as binary.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '\\377\\000x' | redis-cli -p {} -x PUBLISH {CHANNEL}",
            redis.port
        ))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    member.expect_message(op::BINARY, b"\xff\x00x");
    elsewhere.set_read_timeout(Duration::from_millis(300));
    assert!(elsewhere.try_read_frame().is_err(), "another room heard it");
}

#[test]
fn redis_killed_and_restarted_mid_chat_loses_no_connection() {
    let mut redis = Redis::start();
    let a = Server::with_args(&["--pubsub", &redis.url()]);
    let b = Server::with_args(&["--pubsub", &redis.url()]);
    let mut members = members_on(&[&a, &b], 4);
    wait_subscribers(&redis, 2);
    chat_exactly_once(&mut members, 5, "before");

    redis.kill();
    // Local members keep chatting: a member on `a` still hears the other one on `a`.
    eventually(WAIT, || (a.stats()["pubsub_up"] == 0).then_some(())).expect("a sees Redis gone");
    members[0].send_frame(true, OpCode::Text, b"alone");
    members[0].expect_message(op::TEXT, b"alone");
    members[2].expect_message(op::TEXT, b"alone");
    assert!(a.stats()["pubsub_unpublished_total"].as_u64() >= Some(1));

    redis.restart();
    wait_stat(&a, "pubsub_reconnects_total", 1);
    wait_stat(&b, "pubsub_reconnects_total", 1);
    wait_subscribers(&redis, 2);
    chat_exactly_once(&mut members, 5, "after");
    for server in [&a, &b] {
        let stats = server.stats();
        assert_eq!(stats["websockets"], 2, "no connection lost: {stats}");
        assert_eq!(stats["pubsub_up"], 1, "{stats}");
    }
    let log = a.log_tail(200);
    assert_eq!(log.matches("lost Redis").count(), 1, "logged once:\n{log}");
    assert_eq!(log.matches("is back;").count(), 1, "logged once:\n{log}");
}

#[test]
fn a_stopped_redis_never_stalls_the_reactor() {
    let redis = Redis::start();
    let a = Server::with_args(&["--pubsub", &redis.url(), "--memory-budget", "16MiB"]);
    let b = Server::with_args(&["--pubsub", &redis.url()]);
    let mut members = members_on(&[&a, &b], 4);
    wait_subscribers(&redis, 2);

    redis.signal(libc::SIGSTOP);
    // 8 MiB of messages while Redis takes none: past what the kernel's socket buffers
    // hold, the bus queues 1 MiB (its bound for this budget) and no more, and local
    // members get every message at once.
    let big = vec![b'x'; 64 * 1024];
    for _ in 0..128 {
        members[0].send_frame(true, OpCode::Text, &big);
        members[0].expect_message(op::TEXT, &big);
        members[2].expect_message(op::TEXT, &big);
    }
    let mut echo = a.open();
    echo.send_frame(true, OpCode::Text, b"still here");
    echo.expect_message(op::TEXT, b"still here");
    let stats = a.stats();
    eprintln!(
        "Redis stopped: {} bytes queued, {} published, {} not published",
        stats["pubsub_queued_bytes"],
        stats["pubsub_published_total"],
        stats["pubsub_unpublished_total"]
    );
    assert!(
        stats["pubsub_unpublished_total"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(
        stats["pubsub_queued_bytes"].as_u64() <= Some(2 << 20),
        "{stats}"
    );

    redis.signal(libc::SIGCONT);
    // What was queued goes out now, and reaches the other server's members, who read
    // at once (one thread each): a member that lags 1 MiB behind its room is dropped.
    let published = a.stats()["pubsub_published_total"].as_u64().unwrap();
    assert!(published >= 1, "some went out before the queue filled");
    let mut on_b = [members.remove(1), members.remove(2)];
    std::thread::scope(|s| {
        for m in &mut on_b {
            s.spawn(|| {
                for _ in 0..published {
                    m.expect_message(op::TEXT, &big);
                }
            });
        }
    });
    assert_eq!(b.stats()["pubsub_received_total"], published);
    let mut all = vec![members.remove(0), members.remove(0)];
    all.extend(on_b);
    chat_exactly_once(&mut all, 5, "cont");
}

#[test]
fn redis_absent_at_start_is_a_clear_error() {
    let port = free_port();
    for workers in ["1", "2"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wsreactor"))
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", workers])
            .args(["--pubsub", &format!("redis://127.0.0.1:{port}")])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{log}");
        assert!(log.contains("does not answer"), "{log}");
        assert!(!log.contains("accepting on"), "no worker started: {log}");
    }
}
