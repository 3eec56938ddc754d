//! The pipes between a worker and its supervisor: up, the worker's counters as one
//! JSON line a second on its stdout ([`report`]); down, the merged view: one JSON line
//! (a [`View`]) a second down each worker's stdin, a pipe whose other end only the
//! supervisor holds.
//!
//! Why a pipe per worker and whole views: workers already report up their stdout once a
//! second, so the way down mirrors it; every worker then answers `/stats` and
//! `/metrics` from the same snapshot, so consecutive requests agree whichever worker
//! takes them, and no worker needs to know another. Shared memory would be fresher but
//! needs fixed-size counters (ours have maps by reason and close code) and unsafe code.
//!
//! Neither end ever blocks. The supervisor does not wait for a worker that is slow to
//! read (a long chat fan-out, a stopped process): the rest of a line the pipe did not
//! take stays queued, views sent meanwhile are skipped for that worker, and it later
//! gets a whole, newer one; at most one line per worker is held. The worker reads the
//! pipe as one more event source of its reactor and keeps the newest whole line.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::process::ChildStdin;
use std::time::Duration;

use log::{info, warn};
use mio::unix::pipe;
use mio::{Interest, Registry, Token};

use super::stats::Stats;
use super::view::View;

/// A worker's counters as one JSON line on stdout, which the supervisor reads.
pub fn report(stats: &Stats) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, stats)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// How long a new worker waits for its first view before it accepts connections anyway
/// (it would answer `/stats` with 503 until one comes). Normally the view arrives
/// within milliseconds of the worker's first report.
pub const FIRST_VIEW_WAIT: Duration = Duration::from_secs(1);

/// A line longer than this is not a view from our supervisor: it is dropped, not kept
/// growing. (A view is well under 1 KiB per worker.)
const MAX_LINE: usize = 16 * 1024 * 1024;

/// The supervisor's end: one pipe per worker slot.
#[derive(Debug, Default)]
pub struct Sender {
    pipes: Vec<Option<Pipe>>,
}

#[derive(Debug)]
struct Pipe {
    tx: pipe::Sender,
    /// The rest of a line the pipe has not taken yet.
    unsent: Vec<u8>,
    sent: usize,
}

impl Sender {
    /// A sender for `slots` worker slots, none connected yet.
    pub fn new(slots: usize) -> Sender {
        Sender {
            pipes: (0..slots).map(|_| None).collect(),
        }
    }

    /// Feeds the worker just started in `slot` through its stdin from now on.
    pub fn attach(&mut self, slot: usize, stdin: ChildStdin) {
        let tx = pipe::Sender::from(stdin);
        match tx.set_nonblocking(true) {
            Ok(()) => {
                self.pipes[slot] = Some(Pipe {
                    tx,
                    unsent: Vec::new(),
                    sent: 0,
                })
            }
            // A blocking pipe could stall the supervisor: better no feed for this one.
            Err(e) => warn!("worker {slot}: no view for it: {e}"),
        }
    }

    /// Forgets the pipe of the worker in `slot` (it has exited).
    pub fn detach(&mut self, slot: usize) {
        self.pipes[slot] = None;
    }

    /// Sends `view` to every worker that has taken all of the previous one.
    pub fn send(&mut self, view: &View) {
        let mut line = serde_json::to_vec(view).expect("a view serializes");
        line.push(b'\n');
        for slot in 0..self.pipes.len() {
            let Some(pipe) = &mut self.pipes[slot] else {
                continue;
            };
            if pipe.sent == pipe.unsent.len() {
                pipe.unsent.clear();
                pipe.unsent.extend_from_slice(&line);
                pipe.sent = 0;
            }
            self.push(slot);
        }
    }

    /// Writes on with what slow workers have not taken yet.
    pub fn flush(&mut self) {
        for slot in 0..self.pipes.len() {
            self.push(slot);
        }
    }

    /// Writes slot's unsent bytes until done or `WouldBlock`; forgets a broken pipe.
    fn push(&mut self, slot: usize) {
        let Some(pipe) = &mut self.pipes[slot] else {
            return;
        };
        while pipe.sent < pipe.unsent.len() {
            match pipe.tx.write(&pipe.unsent[pipe.sent..]) {
                Ok(n) => pipe.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EPIPE: the worker is gone; keep_alive will notice and restart it.
                Err(_) => {
                    self.pipes[slot] = None;
                    return;
                }
            }
        }
        // Release a large line's buffer once it is through.
        pipe.unsent = Vec::new();
        pipe.sent = 0;
    }
}

/// A worker's end: its stdin, non-blocking, registered with its reactor.
#[derive(Debug)]
pub struct Receiver {
    rx: pipe::Receiver,
    /// A line begun but not ended yet.
    partial: Vec<u8>,
    /// Skipping the rest of a line over [`MAX_LINE`].
    skipping: bool,
}

impl Receiver {
    /// This process's stdin as the feed, registered with `registry` under `token`.
    pub fn from_stdin(registry: &Registry, token: Token) -> io::Result<Receiver> {
        // A duplicate of fd 0, so that the feed owns what it registers and closes.
        let fd = io::stdin().as_fd().try_clone_to_owned()?;
        let mut rx = pipe::Receiver::from(fd);
        // Only this process reads this pipe: nobody else sees the flag change.
        rx.set_nonblocking(true)?;
        registry.register(&mut rx, token, Interest::READABLE)?;
        Ok(Receiver {
            rx,
            partial: Vec::new(),
            skipping: false,
        })
    }

    /// Reads all that has arrived (the pipe is edge-triggered) and returns the newest
    /// whole view in it, if any. At EOF (the supervisor is gone) it deregisters itself;
    /// the worker keeps answering with the last view until its own end.
    pub fn read(&mut self, registry: &Registry) -> Option<View> {
        let mut newest: Option<Vec<u8>> = None;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.rx.read(&mut chunk) {
                Ok(0) => {
                    info!("the supervisor's view feed closed");
                    let _ = registry.deregister(&mut self.rx);
                    break;
                }
                Ok(n) => self.take(&chunk[..n], &mut newest),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("reading the supervisor's view feed: {e}");
                    let _ = registry.deregister(&mut self.rx);
                    break;
                }
            }
        }
        let line = newest?;
        match serde_json::from_slice(&line) {
            Ok(view) => Some(view),
            Err(e) => {
                warn!("an unreadable view from the supervisor: {e}");
                None
            }
        }
    }

    /// Splits `bytes` into lines, keeping the newest whole one in `newest`.
    fn take(&mut self, bytes: &[u8], newest: &mut Option<Vec<u8>>) {
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if !self.skipping {
                self.partial.extend_from_slice(&rest[..end]);
                *newest = Some(std::mem::take(&mut self.partial));
            }
            self.skipping = false;
            rest = &rest[end + 1..];
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE {
                warn!("a view line over {MAX_LINE} bytes from the supervisor: dropped");
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::stats::Stats;
    use crate::server::view::WorkerEntry;
    use mio::{Events, Poll};
    use std::process::{Command, Stdio};

    fn view(n: u64) -> View {
        View {
            uptime_ms: n,
            workers: vec![WorkerEntry {
                worker: 0,
                pid: Some(1),
                up: true,
                restarts_total: 0,
                stats: Stats {
                    accepted_total: n,
                    ..Stats::default()
                },
            }],
            retired: Stats::default(),
        }
    }

    fn receiver(rx: pipe::Receiver) -> Receiver {
        Receiver {
            rx,
            partial: Vec::new(),
            skipping: false,
        }
    }

    #[test]
    fn lines_split_anywhere_give_the_newest_whole_view() {
        let (a, b) = (
            serde_json::to_vec(&view(1)).unwrap(),
            serde_json::to_vec(&view(2)).unwrap(),
        );
        let mut stream = a.clone();
        stream.push(b'\n');
        stream.extend_from_slice(&b);
        stream.push(b'\n');
        stream.extend_from_slice(&a[..5]);
        for split in 0..stream.len() {
            let mut feed = receiver(pipe::new().unwrap().1);
            let mut newest = None;
            feed.take(&stream[..split], &mut newest);
            feed.take(&stream[split..], &mut newest);
            assert_eq!(newest.as_deref(), Some(&b[..]), "split at {split}");
            assert_eq!(feed.partial, a[..5], "split at {split}");
        }
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end() {
        let mut feed = receiver(pipe::new().unwrap().1);
        let mut newest = None;
        let big = vec![b'x'; MAX_LINE + 1];
        feed.take(&big, &mut newest);
        feed.take(b"yyy\nzz", &mut newest);
        assert_eq!(newest, None);
        feed.take(b"\n", &mut newest);
        assert_eq!(newest.as_deref(), Some(&b"zz"[..]));
    }

    /// The supervisor's end never blocks on a worker that does not read: it keeps one
    /// line's rest and sends nothing newer until that is through.
    #[test]
    fn a_worker_that_does_not_read_never_blocks_the_supervisor() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut sender = Sender::new(1);
        sender.attach(0, child.stdin.take().unwrap());
        // Far more than a pipe holds (64 KiB on Linux), in large lines.
        let mut big = view(0);
        big.workers = (0..100).map(|_| view(0).workers[0].clone()).collect();
        for n in 0..200 {
            big.uptime_ms = n;
            sender.send(&big);
        }
        let pipe = sender.pipes[0].as_ref().unwrap();
        assert!(pipe.sent < pipe.unsent.len(), "the pipe is full");
        let _ = child.kill();
        let _ = child.wait();
        sender.send(&big);
        assert!(sender.pipes[0].is_none(), "a broken pipe is forgotten");
    }

    #[test]
    fn views_arrive_through_a_registered_pipe() {
        let (mut tx, mut rx) = pipe::new().unwrap();
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut rx, Token(7), Interest::READABLE)
            .unwrap();
        let mut feed = receiver(rx);
        let mut events = Events::with_capacity(4);
        for n in [3, 4] {
            let mut line = serde_json::to_vec(&view(n)).unwrap();
            line.push(b'\n');
            tx.write_all(&line).unwrap();
        }
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));
        assert_eq!(feed.read(poll.registry()), Some(view(4)));
        assert_eq!(feed.read(poll.registry()), None, "nothing new");
        drop(tx);
        assert_eq!(feed.read(poll.registry()), None, "EOF");
    }
}
