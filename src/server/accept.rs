//! The listener's side of the reactor: accepting until `WouldBlock` (the listener is
//! edge-triggered), what each `accept` failure means, pausing when accepting cannot go
//! on, and the spare descriptor for when the process has no other.
//!
//! Out of descriptors, `accept` fails with EMFILE even when nobody waits (the kernel
//! takes the descriptor before it looks at the queue). A descriptor held in reserve
//! (libuv/libev's trick) is then given up to take the client that has waited longest
//! in the backlog, if any: the reactor either makes room for it (the connection that
//! has waited longest for its request head gives way) or has it told 503 and closed,
//! so no client hangs in the backlog and the loop never spins.

use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use log::debug;
use mio::net::{TcpListener, TcpStream};
use mio::Registry;

use super::stats::Stats;
use super::warnings::Warnings;
use crate::protocol::handshake::Refusal;

/// How long to stop accepting when out of descriptors with no spare to take a client
/// with, or when `accept` fails for want of kernel memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What [`Acceptor::next`] brought.
#[derive(Debug)]
pub enum Accepted {
    /// A new client.
    Client(TcpStream),
    /// Out of descriptors, the spare took the client that has waited longest: make room
    /// for it and call [`Acceptor::made_room`], or have it told with [`Acceptor::shed`].
    OverLimit(TcpStream),
    /// Nothing more to accept now (nobody waits, accepting is paused, or stopped).
    Done,
}

/// The listening socket and the state of accepting from it.
#[derive(Debug)]
pub struct Acceptor {
    listener: Option<TcpListener>,
    /// A descriptor held in reserve (see the module's documentation).
    spare: Option<File>,
    paused_until: Option<Instant>,
    warnings: Warnings,
}

impl Acceptor {
    /// Accepts from `listener` (registered by the caller), not before `paused_until`.
    pub fn new(listener: TcpListener, paused_until: Option<Instant>) -> Acceptor {
        Acceptor {
            listener: Some(listener),
            spare: File::open("/dev/null").ok(),
            paused_until,
            warnings: Warnings::default(),
        }
    }

    /// The next client waiting, if any. `open` is the connections held, for the log.
    pub fn next(&mut self, open: usize, stats: &mut Stats) -> Accepted {
        loop {
            if self.paused_until.is_some() {
                return Accepted::Done;
            }
            let Some(listener) = self.listener.as_ref() else {
                return Accepted::Done;
            };
            match listener.accept() {
                Ok((socket, _)) => return Accepted::Client(socket),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Done,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The client gave up between its SYN and our accept: the next may be fine.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO)) => {
                    debug!("accept: {e}")
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    return self.take_with_spare(open, stats)
                }
                // ENOBUFS, ENOMEM, ...: the connection stays queued, so retrying at once
                // would spin. Back off as for EMFILE without a spare.
                Err(e) => {
                    self.warnings
                        .warn(|| format!("accept: {e}; pausing accepts briefly"));
                    self.pause_for(ACCEPT_BACKOFF);
                    return Accepted::Done;
                }
            }
        }
    }

    /// Out of descriptors: gives up the spare to take the client that has waited
    /// longest, if any.
    fn take_with_spare(&mut self, open: usize, stats: &mut Stats) -> Accepted {
        stats.accept_emfile_total += 1;
        let failures = stats.accept_emfile_total;
        self.warnings.warn(|| {
            format!(
                "accept: out of file descriptors with {open} connections open: each newcomer \
                 takes the place of the longest unfinished request head, or gets 503 \
                 ({failures} accept failures so far)"
            )
        });
        // The spare may have been lost to a failed reopen: a descriptor freed since
        // then lets us take it back.
        let spare = self.spare.take().or_else(|| File::open("/dev/null").ok());
        let (Some(spare), Some(listener)) = (spare, self.listener.as_ref()) else {
            self.pause_for(ACCEPT_BACKOFF);
            return Accepted::Done;
        };
        drop(spare);
        let taken = listener.accept();
        let accepted = match taken {
            Ok((socket, _)) => return Accepted::OverLimit(socket),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Accepted::Done,
            Err(_) => {
                self.pause_for(ACCEPT_BACKOFF);
                Accepted::Done
            }
        };
        self.spare = File::open("/dev/null").ok();
        accepted
    }

    /// The reactor made room for a client over the limit (a connection gave way): the
    /// descriptor it freed refills the spare, and the client keeps the spare's old one.
    pub fn made_room(&mut self) {
        self.spare = File::open("/dev/null").ok();
    }

    /// Tells a client over the limit that there is no room (503, `Retry-After: 1`) and
    /// closes it; its descriptor refills the spare.
    pub fn shed(&mut self, mut socket: TcpStream, stats: &mut Stats) {
        // The request it may have sent is read first, so that closing sends a FIN
        // behind the 503 rather than a reset that would discard it.
        crate::stream::discard_unread(&mut socket);
        let mut response = Vec::new();
        Refusal::NO_DESCRIPTOR.write_response(&mut response);
        // A fresh socket's send buffer always takes these few bytes.
        let _ = socket.write(&response);
        stats.shed_total += 1;
        // Only now, with the shed socket closed, is there a descriptor for the spare.
        drop(socket);
        self.spare = File::open("/dev/null").ok();
    }

    /// Ends a pause at the next turn: a descriptor was freed (a pause for want of one is
    /// over), or a worker got its first view of the server.
    pub fn resume_now(&mut self) {
        if self.paused_until.is_some() {
            self.paused_until = Some(Instant::now());
        }
    }

    fn pause_for(&mut self, wait: Duration) {
        self.paused_until = Some(Instant::now() + wait);
    }

    /// When a pause ends, if accepting is paused (the reactor wakes for it).
    pub fn paused_until(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Ends a pause that is over at `now`; returns whether one did (accept then, since
    /// no readiness edge will come for clients that waited).
    pub fn resume_if_due(&mut self, now: Instant) -> bool {
        let due = self.paused_until.is_some_and(|until| now >= until);
        if due {
            self.paused_until = None;
        }
        due
    }

    /// Stops accepting for good (shutdown): the listener is closed.
    pub fn stop(&mut self, registry: &Registry) {
        if let Some(mut listener) = self.listener.take() {
            let _ = registry.deregister(&mut listener);
        }
    }
}
