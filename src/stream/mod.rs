//! A connection's byte stream over a nonblocking socket, for the server and the load
//! generator alike: reading behind kept input, writing now or spilling what the socket
//! will not take, and flushing the spill. The protocol core never sees a socket; this
//! is the IO half that both shells share.
//!
//! Memory (an idle connection's budget is under 96 bytes): an idle connection holds no
//! buffer. Bytes that cannot be handled now live in a boxed [`Spill`] that exists only
//! while it holds some, and is released (not just cleared) once drained
//! (docs/design.md#memory-budget).

mod cork;
mod output;
mod records;

use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

pub use cork::{Cork, Corked};
pub use output::Output;
pub use records::{Records, RecordsRead};

use crate::protocol::transmit::Transmit;

/// Bytes a connection holds only while it must.
#[derive(Debug, Default)]
pub struct Spill {
    /// Received bytes not consumed yet: an unfinished head, frame header or control
    /// frame (under 8 KiB: a longer head is refused).
    pub input: Vec<u8>,
    /// Payload gathered for a frame or message still arriving.
    pub gathered: Vec<u8>,
    /// Over TLS, a record not whole yet (at most one record: 16 KiB and its overhead).
    pub records: Vec<u8>,
    /// Output the socket would not take yet.
    pub output: Output,
    /// What [`Spilled::settle`] last added to the caller's [`Held`].
    counted: Held,
}

impl Spill {
    fn is_empty(&self) -> bool {
        self.input.is_empty()
            && self.gathered.is_empty()
            && self.records.is_empty()
            && self.output.is_empty()
    }

    fn held(&self) -> usize {
        self.input.len() + self.gathered.len() + self.records.len() + self.output.len()
    }

    fn counts(&self, pool_mark: Option<usize>) -> Held {
        Held {
            bytes: self.held(),
            // A message gathered while it is in progress (a compressed one, on an echo
            // connection) is a message in progress too.
            pooled: pool_mark.map_or(0, |mark| {
                self.gathered.len() + self.output.len().saturating_sub(mark)
            }),
        }
    }
}

/// Bytes held by connections' spills, summed by [`Spilled::settle`]: what a memory
/// budget bounds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Every byte held: kept input, gathered payload and unsent output.
    pub bytes: usize,
    /// Unsent output beyond the pool mark, and payload gathered for a message in
    /// progress, of the spills that draw on a pool (see [`Spilled::settle`]): what they
    /// hold beyond what every connection may.
    pub pooled: usize,
}

impl Held {
    fn add(&mut self, other: Held) {
        self.bytes += other.bytes;
        self.pooled += other.pooled;
    }

    fn sub(&mut self, other: Held) {
        self.bytes -= other.bytes;
        self.pooled -= other.pooled;
    }
}

/// Reads and drops whatever the peer has sent that is still unread, up to a bound, so
/// that closing the socket right after sends a FIN behind our last words, not a reset
/// that would discard them (RFC 9293 §3.6: closing with unread data aborts). For a
/// socket closed at once, without lingering for the peer's EOF.
pub fn discard_unread(socket: &mut impl Read) {
    let mut scratch = [0u8; 4096];
    for _ in 0..16 {
        match socket.read(&mut scratch) {
            Ok(n) if n == scratch.len() => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Drained (a short read or WouldBlock), at EOF, or broken: nothing to save.
            _ => return,
        }
    }
}

/// What one read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// `buf[..len]` holds the kept input followed by `fresh` new bytes.
    Data {
        /// Bytes in the buffer now.
        len: usize,
        /// Of which new from this read.
        fresh: usize,
    },
    /// The peer ended its sending side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
}

/// A spill that exists only while it holds bytes.
#[derive(Debug, Default)]
pub struct Spilled(Option<Box<Spill>>);

impl Spilled {
    /// Unsent output bytes.
    pub fn unsent(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.output.len())
    }

    /// The spill, created on first use.
    pub fn get(&mut self) -> &mut Spill {
        self.0.get_or_insert_with(Box::default)
    }

    /// Reads once into `buf` behind the kept input, which is moved to the front of
    /// `buf` so that both are processed in place as one slice.
    pub fn read(&mut self, socket: &mut impl Read, buf: &mut [u8]) -> io::Result<Received> {
        let kept = self.0.as_ref().map_or(0, |s| s.input.len());
        debug_assert!(kept < buf.len());
        loop {
            match socket.read(&mut buf[kept..]) {
                Ok(0) => return Ok(Received::Eof),
                Ok(n) => {
                    if let Some(s) = self.0.as_mut().filter(|_| kept > 0) {
                        buf[..kept].copy_from_slice(&s.input);
                        s.input = Vec::new();
                    }
                    return Ok(Received::Data {
                        len: kept + n,
                        fresh: n,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Kept input and kept TLS record bytes: how long each is.
    fn kept(&self) -> (usize, usize) {
        self.0
            .as_ref()
            .map_or((0, 0), |s| (s.input.len(), s.records.len()))
    }

    /// Moves the kept input and the kept TLS record bytes to the front of `input` and
    /// `records` (each at least as long as [`Spilled::kept`] says), releasing them here.
    fn restore(&mut self, input: &mut [u8], records: &mut [u8]) {
        if let Some(s) = self.0.as_mut() {
            input[..s.input.len()].copy_from_slice(&s.input);
            records[..s.records.len()].copy_from_slice(&s.records);
            s.input = Vec::new();
            s.records = Vec::new();
        }
    }

    /// Keeps the start of a TLS record that has not arrived whole.
    pub fn keep_records(&mut self, partial: &[u8]) {
        if !partial.is_empty() {
            self.get().records.extend_from_slice(partial);
        }
    }

    /// The kept TLS record bytes (empty without a spill).
    pub fn records(&mut self) -> &mut [u8] {
        self.0.as_mut().map_or(&mut [], |s| &mut s.records[..])
    }

    /// Keeps input that could not be consumed yet, for the next read.
    pub fn keep(&mut self, unconsumed: &[u8]) {
        if !unconsumed.is_empty() {
            self.get().input.extend_from_slice(unconsumed);
        }
    }

    /// Writes `a` then `b` now if nothing is queued before them; whatever the socket
    /// does not take is copied into the spill. Returns the bytes written.
    pub fn write(&mut self, socket: &mut impl Write, a: &[u8], b: &[u8]) -> io::Result<usize> {
        let done = self.write_now(socket, a, b)?;
        if done < a.len() + b.len() {
            let output = &mut self.get().output;
            if done < a.len() {
                output.push_copy(&a[done..]);
                output.push_copy(b);
            } else {
                output.push_copy(&b[done - a.len()..]);
            }
        }
        Ok(done)
    }

    /// Writes as much of `a` then `b` as the socket takes, provided nothing is queued
    /// (which must go first); returns how much went out.
    fn write_now(&mut self, socket: &mut impl Write, a: &[u8], b: &[u8]) -> io::Result<usize> {
        let total = a.len() + b.len();
        let mut done = 0;
        while self.unsent() == 0 && done < total {
            let result = if done < a.len() {
                socket.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])
            } else {
                socket.write(&b[done - a.len()..])
            };
            match result {
                // A zero-length write on a stream socket: the peer takes nothing more.
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Writes spilled output until done or `WouldBlock`; returns the bytes written.
    pub fn flush(&mut self, socket: &mut impl Write) -> io::Result<usize> {
        match self.0.as_mut() {
            Some(s) => s.output.write_to(socket),
            None => Ok(0),
        }
    }

    /// Releases the spill once it holds nothing: idle connections own no heap. A spill
    /// still counted in a total is kept until [`Spilled::settle`] takes its count out.
    pub fn tidy(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|s| s.is_empty() && s.counted == Held::default())
        {
            self.0 = None;
        }
    }

    /// Bytes held: kept input, gathered payload and unsent output.
    pub fn held(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.held())
    }

    /// Brings `total` (what all connections hold, which a memory budget bounds) up to
    /// date with this spill's change since the last call, then [`Spilled::tidy`]. With a
    /// `pool_mark`, unsent output beyond it and gathered payload count as drawn from a
    /// pool too ([`Held::pooled`]).
    pub fn settle(&mut self, total: &mut Held, pool_mark: Option<usize>) {
        if let Some(s) = self.0.as_mut() {
            total.sub(s.counted);
            s.counted = s.counts(pool_mark);
            total.add(s.counted);
        }
        self.tidy();
    }

    /// Takes this spill's bytes out of `total` for good (the connection is going).
    pub fn release(&mut self, total: &mut Held) {
        if let Some(s) = self.0.take() {
            total.sub(s.counted);
        }
    }
}

/// Output queued behind what is already unsent, without a write: for frames that wait
/// for a later write (a member's chat frames, written together once the fan-out is done).
/// A shared frame stays shared. Only between turns: a turn's own output goes through the
/// [`Cork`], which writes after whatever is queued here.
impl Transmit for Spilled {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        let output = &mut self.get().output;
        output.push_copy(head);
        output.push_copy(body);
    }

    fn transmit_shared(&mut self, frame: &Rc<[u8]>) {
        self.get().output.push_shared(Rc::clone(frame), 0);
    }
}

/// A connection's output for one call into its protocol core: what the core transmits
/// goes to the socket now, or to the spill. The first write error is kept, and nothing
/// more is written after it; the caller ends the turn with it ([`Link::finish`]).
#[derive(Debug)]
pub struct Link<'c, S> {
    socket: &'c mut S,
    spill: &'c mut Spilled,
    written: u64,
    error: Option<io::Error>,
}

impl<'c, S: Write> Link<'c, S> {
    /// A link to `socket`, spilling into `spill` what it does not take.
    pub fn new(socket: &'c mut S, spill: &'c mut Spilled) -> Link<'c, S> {
        Link {
            socket,
            spill,
            written: 0,
            error: None,
        }
    }

    /// The spill, for bytes the caller keeps beside the output.
    pub fn spill(&mut self) -> &mut Spill {
        self.spill.get()
    }

    /// Whether a write failed.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// The bytes written, or the first error.
    pub fn finish(self) -> io::Result<u64> {
        self.error.map_or(Ok(self.written), Err)
    }
}

impl<S: Write> Transmit for Link<'_, S> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        if self.error.is_none() {
            match self.spill.write(self.socket, head, body) {
                Ok(n) => self.written += n as u64,
                Err(e) => self.error = Some(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_counts_what_a_spill_holds_and_draws_from_a_pool() {
        let mut total = Held::default();
        let (mut echo, mut member) = (Spilled::default(), Spilled::default());
        echo.get().output.push_copy(&[0; 300]);
        member.get().output.push_copy(&[0; 300]);
        echo.settle(&mut total, Some(256));
        member.settle(&mut total, None);
        assert_eq!(
            total,
            Held {
                bytes: 600,
                pooled: 44
            },
            "only the echo draws"
        );
        // A compressed message gathered on the echo connection draws on the pool whole.
        echo.get().gathered.extend_from_slice(&[1; 100]);
        echo.settle(&mut total, Some(256));
        assert_eq!(
            total,
            Held {
                bytes: 700,
                pooled: 144
            }
        );
        echo.get().gathered = Vec::new();
        // Drained: counted out, and the spill released.
        echo.get().output = Output::default();
        echo.settle(&mut total, Some(256));
        assert_eq!(
            total,
            Held {
                bytes: 300,
                pooled: 0
            }
        );
        assert_eq!(echo.held(), 0);
        assert!(echo.0.is_none(), "an idle connection owns no heap");
        member.release(&mut total);
        assert_eq!(total, Held::default());
    }

    #[test]
    fn a_spill_still_counted_is_not_tidied_away() {
        let mut total = Held::default();
        let mut spill = Spilled::default();
        spill.get().input.extend_from_slice(b"half a head");
        spill.settle(&mut total, None);
        spill.get().input.clear();
        spill.tidy();
        spill.release(&mut total);
        assert_eq!(total, Held::default(), "its count was not lost with it");
    }
}
