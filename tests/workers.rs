//! `serve --workers N`: one port shared by N processes, a supervisor that restarts a
//! worker that dies and stops them all on SIGTERM.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use common::{client_frame, eventually, op, Server};
use wsreactor::protocol::frame::OpCode;

/// The supervisor's children, from /proc.
fn children(pid: u32) -> BTreeSet<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// The pids that answer `/stats` over `tries` fresh connections (the kernel spreads
/// connections over the workers by a hash of the 4-tuple).
fn serving_pids(server: &Server, tries: usize) -> BTreeSet<u32> {
    (0..tries)
        .map(|_| server.stats()["pid"].as_u64().unwrap() as u32)
        .collect()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our own child or grandchild.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

#[test]
fn workers_share_one_port_and_a_dead_worker_is_replaced() {
    let mut server = Server::with_args(&["--workers", "2"]);
    let supervisor = server.pid();
    let workers = eventually(Duration::from_secs(10), || {
        Some(children(supervisor)).filter(|c| c.len() == 2)
    })
    .expect("two worker processes");

    // Both workers serve the one port.
    let serving = eventually(Duration::from_secs(10), || {
        Some(serving_pids(&server, 40)).filter(|p| p.len() == 2)
    })
    .expect("connections reach both workers");
    assert_eq!(serving, workers);

    // Hold connections on every worker, then kill one worker outright.
    let mut held: Vec<_> = (0..20).map(|_| server.open()).collect();
    let victim = *workers.iter().next().unwrap();
    signal(victim, libc::SIGKILL);
    let replaced = eventually(Duration::from_secs(10), || {
        let now = children(supervisor);
        (now.len() == 2 && !now.contains(&victim)).then_some(now)
    })
    .expect("the supervisor starts a replacement worker");
    let replacement = *replaced.difference(&workers).next().unwrap();
    eventually(Duration::from_secs(10), || {
        serving_pids(&server, 20)
            .contains(&replacement)
            .then_some(())
    })
    .expect("the replacement serves the port");

    // Connections held by the surviving worker still echo; the victim's are gone.
    let mut echoed = 0;
    for raw in &mut held {
        // The victim's connections are gone: the write or the read fails there.
        let sent = raw
            .stream
            .write_all(&client_frame(true, OpCode::Text, b"still there?"));
        if let (Ok(()), Ok(Some(frame))) = (sent, raw.try_read_frame()) {
            assert_eq!(
                (frame.opcode, &frame.payload[..]),
                (op::TEXT, &b"still there?"[..])
            );
            echoed += 1;
        }
    }
    assert!(
        echoed > 0 && echoed < held.len(),
        "{echoed} of {} echoed",
        held.len()
    );
    server.assert_serves();

    // SIGTERM to the supervisor stops every worker and then the supervisor.
    signal(supervisor, libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_secs(15)).is_some(),
        "the supervisor exited"
    );
    for pid in replaced {
        assert!(!alive(pid), "worker {pid} outlived the supervisor");
    }
}
