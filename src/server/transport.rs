//! What a connection needs of its byte stream. The server runs connections over
//! nonblocking TCP sockets; the harness (`server::harness`) runs the very same state
//! machine over an in-memory stream, which is how fuzzing and the timer benchmark
//! reach a whole connection without sockets.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::TcpStream;

/// A nonblocking byte stream a reactor can watch.
pub trait Transport: Read + Write + Source {
    /// Ends our sending direction (TCP FIN) while reading goes on: the lingering close.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}
