//! Corked output: everything a connection owes after one read leaves in one `writev`
//! (uWebSockets calls it corking), instead of a write per frame. Pipelined clients send
//! many messages per read; answering them with one syscall instead of one each is the
//! difference between the kernel's cost per message and a dozen times it.
//!
//! A payload that lies in the read buffer (an echo unmasked in place) is not copied: the
//! cork records where it lies and hands that slice to `writev`. Headers and anything
//! else go to a small arena. The cork belongs to the reactor, not to a connection: it
//! is empty between turns, so idle connections hold nothing for it.
//!
//! A turn whose output ends with our Close is followed by `shutdown(Write)` in the same
//! turn. That last write passes `MSG_MORE`, so the kernel holds the bytes and the FIN
//! leaves in the same segment: a closing handshake of 4 segments instead of 6 (the
//! client's FIN then carries its ACK of our Close).

use std::io::{self, IoSlice, Write};

use super::Spilled;
use crate::protocol::transmit::Transmit;

/// Slices handed to one `writev` at most (Linux's IOV_MAX is 1024; a few dozen already
/// fill a socket's send buffer).
const MAX_SLICES: usize = 64;

/// A socket the cork writes to.
pub trait CorkSink: Write {
    /// A write the caller follows at once with `shutdown(Write)` (or a close): the bytes
    /// may wait for the FIN, to leave with it.
    fn write_vectored_before_fin(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_vectored(bufs)
    }
}

impl CorkSink for mio::net::TcpStream {
    fn write_vectored_before_fin(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // MSG_MORE corks this send: the segment is held until the shutdown's FIN joins it
        // (tcp_send_fin sets FIN on an unsent tail and pushes).
        socket2::SockRef::from(&*self).send_vectored_with_flags(bufs, libc::MSG_MORE)
    }
}

#[derive(Debug, Clone, Copy)]
enum Part {
    /// `arena[start..end]`.
    Arena(usize, usize),
    /// `input[start..end]`: bytes of the read buffer the turn was processing.
    Input(usize, usize),
}

/// The reactor's output of one turn for one connection, in order.
#[derive(Debug, Default)]
pub struct Cork {
    arena: Vec<u8>,
    parts: Vec<Part>,
    len: usize,
}

/// A cork open over one read buffer: what is transmitted through it is corked.
#[derive(Debug)]
pub struct Corked<'c> {
    cork: &'c mut Cork,
    /// The read buffer's address range, to tell which bodies lie in it.
    input: std::ops::Range<usize>,
}

impl Cork {
    /// Opens the cork for output whose bodies may lie in `input` (the read buffer that
    /// [`Cork::flush`] is given again).
    pub fn open(&mut self, input: &[u8]) -> Corked<'_> {
        let start = input.as_ptr() as usize;
        Corked {
            cork: self,
            input: start..start + input.len(),
        }
    }

    /// Corked bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is corked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push_arena(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        let end = self.arena.len();
        match self.parts.last_mut() {
            // Adjacent arena bytes make one slice.
            Some(Part::Arena(_, last_end)) if *last_end == start => *last_end = end,
            _ => self.parts.push(Part::Arena(start, end)),
        }
        self.len += bytes.len();
    }

    fn bytes<'a>(&'a self, part: Part, input: &'a [u8]) -> &'a [u8] {
        match part {
            Part::Arena(start, end) => &self.arena[start..end],
            Part::Input(start, end) => &input[start..end],
        }
    }

    /// Appends the corked output to `out` as one slice, and empties the cork: for a
    /// layer that must see a turn's bytes whole (TLS seals them into as few records as
    /// their length needs). `input` as for [`Cork::flush`].
    pub fn gather(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(self.len);
        for &part in &self.parts {
            out.extend_from_slice(self.bytes(part, input));
        }
        self.arena.clear();
        self.parts.clear();
        self.len = 0;
    }

    /// Writes the corked output with one `writev` (more only past `MAX_SLICES` parts),
    /// after anything already spilled; what the socket does not take is copied into the
    /// spill. Empties the cork; returns the bytes written. `input` must be the buffer
    /// the cork was opened over, unchanged since. `fin_follows`: the caller shuts down
    /// writing once this is out, so the last write may wait for the FIN.
    pub fn flush(
        &mut self,
        input: &[u8],
        socket: &mut impl CorkSink,
        spill: &mut Spilled,
        fin_follows: bool,
    ) -> io::Result<usize> {
        if self.parts.is_empty() {
            return Ok(0);
        }
        let result = self.write(input, socket, spill, fin_follows);
        self.arena.clear();
        self.parts.clear();
        self.len = 0;
        result
    }

    fn write(
        &self,
        input: &[u8],
        socket: &mut impl CorkSink,
        spill: &mut Spilled,
        fin_follows: bool,
    ) -> io::Result<usize> {
        let mut written = 0;
        let mut next = 0;
        if spill.unsent() == 0 {
            while next < self.parts.len() {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let batch = &self.parts[next..self.parts.len().min(next + MAX_SLICES)];
                for (slice, &part) in slices.iter_mut().zip(batch) {
                    *slice = IoSlice::new(self.bytes(part, input));
                }
                let want: usize = batch.iter().map(|&p| self.bytes(p, input).len()).sum();
                let slices = &slices[..batch.len()];
                let last = next + batch.len() == self.parts.len();
                let sent = if last && fin_follows {
                    socket.write_vectored_before_fin(slices)
                } else {
                    socket.write_vectored(slices)
                };
                let n = match sent {
                    // A zero-length write on a stream socket: the peer takes nothing more.
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                written += n;
                if n < want {
                    // Short write: the socket is full; spill the rest of this batch
                    // (from the first byte not taken) and everything after it.
                    let mut skip = n;
                    for &part in batch {
                        let bytes = self.bytes(part, input);
                        let taken = skip.min(bytes.len());
                        skip -= taken;
                        spill.get().output.push_copy(&bytes[taken..]);
                    }
                    next += batch.len();
                    break;
                }
                next += batch.len();
            }
        }
        for &part in &self.parts[next..] {
            spill.get().output.push_copy(self.bytes(part, input));
        }
        // Output queued behind earlier output goes out now, as far as it can.
        if spill.unsent() > 0 && written == 0 {
            written += spill.flush(socket)?;
        }
        Ok(written)
    }
}

impl Transmit for Corked<'_> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.cork.push_arena(head);
        let at = body.as_ptr() as usize;
        if !body.is_empty() && self.input.contains(&at) && at + body.len() <= self.input.end {
            let start = at - self.input.start;
            self.cork.parts.push(Part::Input(start, start + body.len()));
            self.cork.len += body.len();
        } else {
            self.cork.push_arena(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then would block; counts calls.
    struct Sink {
        out: Vec<u8>,
        room: usize,
        calls: usize,
        /// Bytes written by calls that said a FIN follows.
        before_fin: Vec<u8>,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.room - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
            }
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl CorkSink for Sink {
        fn write_vectored_before_fin(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let from = self.out.len();
            let n = self.write_vectored(bufs)?;
            self.before_fin.extend_from_slice(&self.out[from..]);
            Ok(n)
        }
    }

    fn new_sink(room: usize) -> Sink {
        Sink {
            out: Vec::new(),
            room,
            calls: 0,
            before_fin: Vec::new(),
        }
    }

    #[test]
    fn a_turns_output_leaves_in_one_write_in_order() {
        let input = b"0123456789".to_vec();
        let mut cork = Cork::default();
        let mut tx = cork.open(&input);
        tx.transmit(b"<h1>", &input[2..5]);
        tx.transmit(b"<h2>", b"own");
        tx.transmit(b"<h3>", &input[7..9]);
        assert_eq!(cork.len(), 4 + 3 + 4 + 3 + 4 + 2);
        let mut sink = new_sink(usize::MAX);
        let mut spill = Spilled::default();
        let n = cork.flush(&input, &mut sink, &mut spill, false).unwrap();
        assert_eq!(sink.out, b"<h1>234<h2>own<h3>78");
        assert_eq!((n, sink.calls), (sink.out.len(), 1), "one writev");
        assert!(cork.is_empty() && spill.unsent() == 0);
    }

    #[test]
    fn what_the_socket_does_not_take_is_spilled_and_keeps_its_order() {
        let input = b"abcdefgh".to_vec();
        let mut cork = Cork::default();
        let mut tx = cork.open(&input);
        tx.transmit(b"[", &input[..4]);
        tx.transmit(b"]", &input[4..]);
        let mut sink = new_sink(3);
        let mut spill = Spilled::default();
        assert_eq!(cork.flush(&input, &mut sink, &mut spill, false).unwrap(), 3);
        assert_eq!(spill.unsent(), 10 - 3);
        // Later output goes behind the spilled bytes, never before them.
        let mut tx = cork.open(&input);
        tx.transmit(b"!", &[]);
        sink.room = usize::MAX;
        cork.flush(&input, &mut sink, &mut spill, false).unwrap();
        assert_eq!(sink.out, b"[abcd]efgh!");
        assert_eq!(spill.unsent(), 0);
    }

    #[test]
    fn only_the_last_write_of_a_turn_that_ends_writing_waits_for_the_fin() {
        let input = vec![7u8; 4];
        let mut cork = Cork::default();
        // Past MAX_SLICES parts a turn takes two writes: only the second may wait.
        let mut tx = cork.open(&input);
        for _ in 0..MAX_SLICES / 2 + 1 {
            tx.transmit(b"h", &input);
        }
        let mut sink = new_sink(usize::MAX);
        let mut spill = Spilled::default();
        cork.flush(&input, &mut sink, &mut spill, true).unwrap();
        assert_eq!(sink.calls, 2);
        assert_eq!(sink.before_fin, b"h\x07\x07\x07\x07");
        // Without a FIN to follow, nothing waits.
        let mut tx = cork.open(&input);
        tx.transmit(b"h", &input);
        let mut sink = new_sink(usize::MAX);
        cork.flush(&input, &mut sink, &mut spill, false).unwrap();
        assert!(sink.before_fin.is_empty());
    }
}
