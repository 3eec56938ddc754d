//! Over TLS: one read of records into the first half of the shared read buffer, behind
//! the record bytes kept from before, with the kept plaintext moved to the front of the
//! second half, where the records' plaintext is to follow it (a record's plaintext is
//! never longer than the record, RFC 8446 §5.2). For the server's and the load
//! generator's TLS transports alike; what the records say is the TLS layer's to find.

use std::io::{self, Read};

use super::Spilled;

/// What one read of records brought.
#[derive(Debug)]
pub enum RecordsRead<'b> {
    /// Records to open.
    Data(Records<'b>),
    /// The peer ended its sending side.
    Eof,
    /// Nothing to read now.
    WouldBlock,
}

/// Records read, and where their plaintext goes.
#[derive(Debug)]
pub struct Records<'b> {
    /// The kept record bytes, then the fresh ones.
    pub records: &'b mut [u8],
    /// The room behind the kept plaintext.
    pub plain: &'b mut [u8],
    /// Where the plaintext (the kept, then the new) starts in the read buffer.
    pub start: usize,
    /// Plaintext bytes kept from before (seen already by the session).
    pub kept: usize,
    /// Bytes read from the socket.
    pub fresh: usize,
    /// The read did not fill the room it had: the socket is drained.
    pub drained: bool,
}

impl Spilled {
    /// Reads once from `socket` into the first half of `buf` (see the module doc); room
    /// is left only for records whose plaintext fits behind the kept plaintext.
    pub fn read_records<'b>(
        &mut self,
        socket: &mut impl Read,
        buf: &'b mut [u8],
    ) -> io::Result<RecordsRead<'b>> {
        let half = buf.len() / 2;
        let (records, plain) = buf.split_at_mut(half);
        let (kept_plain, kept_records) = self.kept();
        let room = half - kept_plain;
        let fresh = loop {
            match socket.read(&mut records[kept_records..room]) {
                Ok(0) => return Ok(RecordsRead::Eof),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(RecordsRead::WouldBlock)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.restore(plain, records);
        let end = kept_records + fresh;
        Ok(RecordsRead::Data(Records {
            records: &mut records[..end],
            plain: &mut plain[kept_plain..],
            start: half,
            kept: kept_plain,
            fresh,
            drained: end < room,
        }))
    }
}
