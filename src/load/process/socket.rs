//! Opening one client socket: bound to a loopback source address with
//! `IP_BIND_ADDRESS_NO_PORT`, connected without blocking, handed to mio; and which
//! [`Failure`] an errno from that means.
//!
//! Why `IP_BIND_ADDRESS_NO_PORT`: a plain `bind(src, 0)` must pick a port before the
//! kernel knows the destination, so it reserves the port for every destination and one
//! source address tops out at the ephemeral range in total. With the option the port is
//! chosen at `connect()` per 4-tuple, so each source gets the whole range per server.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::load::wire::Failure;

/// Creates a non-blocking TCP socket, binds it to `source` (port chosen at connect
/// time) and starts connecting to `target`. The connection completes (or fails) later:
/// the caller waits for writable readiness.
pub fn start_connect(source: Option<Ipv4Addr>, target: SocketAddr) -> Result<TcpStream, Failure> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(|e| connect_failure(&e))?;
    if let Some(ip) = source {
        set_bind_address_no_port(&socket).map_err(|e| connect_failure(&e))?;
        socket
            .bind(&SockAddr::from(SocketAddrV4::new(ip, 0)))
            .map_err(|e| connect_failure(&e))?;
    }
    // Echoes are small and timed: never let Nagle hold one back.
    socket.set_nodelay(true).map_err(|e| connect_failure(&e))?;
    // Delayed ACKs from the start (Linux's "pingpong" mode): the last ACK of the
    // three-way handshake rides on the request, and the ACK of the 101 on the first
    // echo, instead of going out alone. Two segments fewer per connection through the
    // loopback, each a transmit and a receive of kernel work on both sides.
    socket
        .set_quickack(false)
        .map_err(|e| connect_failure(&e))?;
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(connect_failure(&e)),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(socket)))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` (Linux 4.2+), which socket2 0.5 does not expose.
fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is a live socket owned by `socket` for the whole call, and
    // we pass a pointer to an initialised c_int together with its exact size, as
    // setsockopt(2) requires for this boolean option.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The failure an error from socket/bind/connect (or a pending connect's SO_ERROR) means.
pub fn connect_failure(e: &io::Error) -> Failure {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Failure::ConnectRefused,
        Some(libc::ETIMEDOUT) => Failure::ConnectTimeout,
        Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => Failure::PortsExhausted,
        Some(libc::EMFILE | libc::ENFILE) => Failure::FdLimit,
        Some(libc::ECONNRESET | libc::ECONNABORTED | libc::EPIPE) => Failure::Reset,
        Some(errno) => Failure::ConnectErrno(errno),
        None => Failure::ConnectErrno(0),
    }
}

/// The failure an error on an established connection means.
pub fn io_failure(e: &io::Error) -> Failure {
    if e.kind() == io::ErrorKind::WriteZero {
        // A zero-length write on a stream socket: the peer can take nothing more.
        return Failure::Reset;
    }
    match e.raw_os_error() {
        Some(libc::ECONNRESET | libc::ECONNABORTED | libc::EPIPE) => Failure::Reset,
        Some(libc::ETIMEDOUT) => Failure::EchoTimeout,
        Some(errno) => Failure::IoErrno(errno),
        None => Failure::IoErrno(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_reasons() {
        let f = |errno| connect_failure(&io::Error::from_raw_os_error(errno));
        assert_eq!(f(libc::ECONNREFUSED), Failure::ConnectRefused);
        assert_eq!(f(libc::EADDRNOTAVAIL), Failure::PortsExhausted);
        assert_eq!(f(libc::EMFILE), Failure::FdLimit);
        assert_eq!(f(libc::ENFILE), Failure::FdLimit);
        assert_eq!(f(libc::ETIMEDOUT), Failure::ConnectTimeout);
        assert_eq!(
            f(libc::ENETUNREACH),
            Failure::ConnectErrno(libc::ENETUNREACH)
        );
        let g = |errno| io_failure(&io::Error::from_raw_os_error(errno));
        assert_eq!(g(libc::ECONNRESET), Failure::Reset);
        assert_eq!(g(libc::EIO), Failure::IoErrno(libc::EIO));
    }

    #[test]
    fn connecting_to_a_closed_loopback_port_is_refused() {
        // Bind a listener to learn a free port, then close it so nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target: SocketAddr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = start_connect(Some(Ipv4Addr::new(127, 0, 0, 7)), target);
        let outcome = match stream {
            Err(f) => f,
            Ok(stream) => {
                // Wait (bounded) for the refusal to land on the socket.
                let mut poll = mio::Poll::new().unwrap();
                let mut stream = stream;
                poll.registry()
                    .register(&mut stream, mio::Token(0), mio::Interest::WRITABLE)
                    .unwrap();
                let mut events = mio::Events::with_capacity(4);
                poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                let err = stream.take_error().unwrap().expect("a refusal");
                connect_failure(&err)
            }
        };
        assert_eq!(outcome, Failure::ConnectRefused);
    }

    #[test]
    fn the_source_address_is_used() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let source = Ipv4Addr::new(127, 0, 0, 9);
        let _stream = start_connect(Some(source), target).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(source));
    }
}
