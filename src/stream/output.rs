//! A connection's unsent output: a queue of byte segments, each either owned by the
//! connection or shared with others (a chat message is encoded once and the same bytes
//! are queued for every member of the room).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// An owned segment grows to this size at most before a new one starts: a large
/// backlog is many modest buffers, never one that doubles and moves (and holds up to
/// twice what it needs) as it grows.
const SEGMENT_SIZE: usize = 64 * 1024;

/// Most segments handed to one `writev` (Linux's IOV_MAX is 1024; a few dozen already
/// fill a socket's send buffer).
const MAX_SLICES: usize = 32;

#[derive(Debug)]
enum Segment {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Owned(v) => v,
            Segment::Shared(s) => s,
        }
    }
}

/// Bytes waiting for the socket, in order.
#[derive(Debug, Default)]
pub struct Output {
    segments: VecDeque<Segment>,
    /// How much of the front segment is already written.
    sent: usize,
    /// Unsent bytes over all segments.
    len: usize,
}

impl Output {
    /// Unsent bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is unsent.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `bytes`, extending the last segment when it is the
    /// connection's own (many small frames make one segment, not many).
    pub fn push_copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        let mut rest = bytes;
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            let room = SEGMENT_SIZE.saturating_sub(last.len()).min(rest.len());
            last.extend_from_slice(&rest[..room]);
            rest = &rest[room..];
        }
        for piece in rest.chunks(SEGMENT_SIZE) {
            let mut segment = Vec::with_capacity(SEGMENT_SIZE.min(piece.len().max(256)));
            segment.extend_from_slice(piece);
            self.segments.push_back(Segment::Owned(segment));
        }
    }

    /// Queues shared bytes, of which the first `written` already went out.
    pub fn push_shared(&mut self, bytes: Rc<[u8]>, written: usize) {
        debug_assert!(written <= bytes.len());
        if written == bytes.len() {
            return;
        }
        if self.segments.is_empty() {
            self.sent = written;
        } else {
            debug_assert_eq!(written, 0, "only the front segment can be partly written");
        }
        self.len += bytes.len() - written;
        self.segments.push_back(Segment::Shared(bytes));
    }

    /// Writes until everything is out or the writer would block; returns how many bytes
    /// went out. `WouldBlock` is not an error here: what is left stays queued.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while !self.segments.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            for (i, segment) in self.segments.iter().take(MAX_SLICES).enumerate() {
                let skip = if i == 0 { self.sent } else { 0 };
                slices[i] = IoSlice::new(&segment.bytes()[skip..]);
                n = i + 1;
            }
            match w.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    total += written;
                    self.consume(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let front = self.segments.front().expect("written bytes were queued");
            let left = front.bytes().len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.sent = 0;
            self.segments.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes per call, then would block.
    struct Trickle {
        out: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn segments_come_out_in_order_across_partial_writes() {
        let shared: Rc<[u8]> = Rc::from(&b"SHARED-FRAME"[..]);
        let mut output = Output::default();
        output.push_shared(Rc::clone(&shared), 3);
        output.push_copy(b"own1");
        output.push_copy(b"own2");
        output.push_shared(Rc::clone(&shared), 0);
        output.push_copy(b"");
        let expected = b"RED-FRAMEown1own2SHARED-FRAME";
        assert_eq!(output.len(), expected.len());
        assert_eq!(output.segments.len(), 3, "own1 and own2 share a segment");
        let mut w = Trickle {
            out: Vec::new(),
            room: 5,
            calls: 0,
        };
        for _ in 0..100 {
            output.write_to(&mut w).unwrap();
        }
        assert_eq!(w.out, expected);
        assert!(output.is_empty() && output.segments.is_empty() && output.sent == 0);
        assert_eq!(Rc::strong_count(&shared), 1, "sent segments are released");
    }

    #[test]
    fn a_fully_written_shared_frame_is_not_queued() {
        let mut output = Output::default();
        output.push_shared(Rc::from(&b"abc"[..]), 3);
        assert!(output.is_empty() && output.segments.is_empty());
    }
}
