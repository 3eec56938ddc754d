//! One nonblocking stream to another process (Redis, or another worker): the IO shell of
//! the bus. It connects without blocking, writes what it can and keeps the rest, reads
//! what the caller allows, and knows nothing of what the bytes mean. Both buffers are
//! released once empty, so an idle link holds no memory.

use std::io::{self, Read, Write};

use mio::event::Source;
use mio::{Interest, Registry, Token};

/// Bytes read per call at most: the rest waits for the caller's next turn.
const READ_CHUNK: usize = 64 * 1024;

/// A stream, its token, and the bytes on their way in and out.
#[derive(Debug)]
pub struct Link<S> {
    token: Token,
    stream: Option<S>,
    /// Whether the connect has completed (a nonblocking connect ends with writable).
    connected: bool,
    /// Whether the stream may have bytes to read: edge-triggered, so set by an event
    /// and cleared only by a read that finds none.
    readable: bool,
    /// Bytes read and not consumed yet (an incomplete reply, or what waits its turn).
    pub input: Vec<u8>,
    output: Vec<u8>,
    /// How much of `output` was written.
    sent: usize,
}

impl<S: Read + Write + Source> Link<S> {
    /// A link with no stream yet, to be known by `token`.
    pub fn new(token: Token) -> Link<S> {
        Link {
            token,
            stream: None,
            connected: false,
            readable: false,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
        }
    }

    /// Takes `stream` (connecting, or connected when `connected`) and registers it.
    pub fn attach(
        &mut self,
        mut stream: S,
        connected: bool,
        registry: &Registry,
    ) -> io::Result<()> {
        self.detach(registry);
        registry.register(
            &mut stream,
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        self.stream = Some(stream);
        self.connected = connected;
        self.readable = true;
        Ok(())
    }

    /// Drops the stream and whatever was on its way.
    pub fn detach(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.connected = false;
        self.readable = false;
        self.input = Vec::new();
        self.output = Vec::new();
        self.sent = 0;
    }

    /// This link's token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Whether a stream is attached (connected or connecting).
    pub fn is_attached(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether the stream is connected.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether a read may find bytes.
    pub fn may_read(&self) -> bool {
        self.connected && self.readable
    }

    /// Bytes queued to send.
    pub fn queued(&self) -> usize {
        self.output.len() - self.sent
    }

    /// The buffer to append output to; [`Link::flush`] sends it.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// An event for this link: the connect may have completed, bytes may be readable.
    /// Returns whether the link has just connected; an error for a failed connect.
    pub fn ready(
        &mut self,
        connected_now: impl FnOnce(&S) -> io::Result<bool>,
    ) -> io::Result<bool> {
        let Some(stream) = &self.stream else {
            return Ok(false);
        };
        self.readable = true;
        if self.connected {
            return Ok(false);
        }
        self.connected = connected_now(stream)?;
        Ok(self.connected)
    }

    /// Writes queued output until done or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.connected) else {
            return Ok(());
        };
        while self.sent < self.output.len() {
            match stream.write(&self.output[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.output.len() {
            self.output = Vec::new();
            self.sent = 0;
        } else if self.sent > self.output.len() / 2 {
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// Reads up to [`READ_CHUNK`] bytes onto `input`. Returns how many; end of stream
    /// is an error (the peer went away).
    pub fn read(&mut self) -> io::Result<usize> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.readable) else {
            return Ok(0);
        };
        let start = self.input.len();
        self.input.resize(start + READ_CHUNK, 0);
        let result = loop {
            match stream.read(&mut self.input[start..]) {
                Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break Ok(0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.input.truncate(start + *result.as_ref().unwrap_or(&0));
        result
    }

    /// Drops the first `n` bytes of input (consumed), releasing the buffer when empty.
    pub fn consume(&mut self, n: usize) {
        if n >= self.input.len() {
            self.input = Vec::new();
        } else {
            self.input.drain(..n);
        }
    }
}
