//! Shared helpers for the integration tests: a guard that runs the real `wsreactor`
//! binary on an ephemeral loopback port, a raw TCP client with its own small frame and
//! HTTP response readers, and a `tungstenite` client as an independent implementation.
//!
//! Invariants every test relies on: every socket read and write has a timeout (a stuck
//! server fails a test, never hangs it), only 127.0.0.1 is ever contacted, and the
//! server process is killed and reaped when its guard drops, panics included.
//!
//! Client frames are built with the crate's own `FrameHeader` and `apply_mask` where they
//! are valid, and by hand where they must be invalid. Server frames and HTTP responses
//! are parsed here, independently of the crate, so a test does not check the server's
//! codec against itself.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use wsreactor::protocol::frame::{apply_mask, FrameHeader, OpCode};

pub mod redis;
pub mod rooms;
pub mod tls;

/// The timeout of every socket read and write unless a test asks for another.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The RFC 6455 §1.3 sample key and the accept value it must produce.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The mask key of the client frames the tests build (any non-trivial key will do).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Opcodes as numbers, for reading server frames without the crate's types.
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// A running `wsreactor serve`; killed and reaped on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server with default options.
    pub fn start() -> Server {
        Server::with_args(&[])
    }

    /// Starts the server on `127.0.0.1:0` with extra CLI arguments and waits for its
    /// `listening on ADDR` line.
    pub fn with_args(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsreactor"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts the server like [`Server::with_args`] under RLIMIT_NOFILE `limit` (soft
    /// and hard, so the server cannot raise it).
    pub fn with_nofile(args: &[&str], limit: u64) -> Server {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_wsreactor"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: the closure runs in the forked child before exec and only makes one
        // async-signal-safe system call on a value it owns.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        Server::spawn(command)
    }

    fn spawn(mut command: Command) -> Server {
        let mut child = command
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the wsreactor binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        // Keep draining stderr for the server's whole life, so a chatty server never
        // blocks on a full pipe; the lines are printed if the test fails.
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        // The guard exists before anything can fail, so the child is always reaped.
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => panic!(
                "the server printed no `listening on` line within {START_TIMEOUT:?}:\n{}",
                server.log_tail(50)
            ),
        }
        assert_eq!(
            server.addr.ip().to_string(),
            "127.0.0.1",
            "the server must listen where it was told"
        );
        assert_ne!(
            server.addr.port(),
            0,
            "port 0 must become an ephemeral port"
        );
        server
    }

    /// The last `n` lines the server logged.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// Panics if the server process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the server exited ({status}):\n{}", self.log_tail(50));
        }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// A raw TCP connection to the server.
    pub fn connect(&self) -> Raw {
        Raw::connect(self.addr)
    }

    /// A raw connection past a valid opening handshake on `/echo`.
    pub fn open(&self) -> Raw {
        self.open_path("/echo")
    }

    /// A raw connection past a valid opening handshake on `path`.
    pub fn open_path(&self, path: &str) -> Raw {
        let mut raw = self.connect();
        raw.send(&upgrade_request(path, ""));
        let resp = raw.read_response();
        resp.assert_switching();
        raw
    }

    /// Sends `request` on a fresh connection and returns the response; the server must
    /// then end the connection (every non-101 response is `Connection: close`).
    pub fn request(&self, request: &[u8]) -> Response {
        let mut raw = self.connect();
        raw.send(request);
        let resp = raw.read_response();
        raw.expect_eof();
        resp
    }

    /// `GET path` without an upgrade.
    pub fn get(&self, path: &str) -> Response {
        self.request(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
    }

    /// `GET /stats`, parsed.
    pub fn stats(&self) -> serde_json::Value {
        let resp = self.get("/stats");
        assert_eq!(resp.status, 200, "/stats: {resp:?}");
        serde_json::from_slice(&resp.body).unwrap_or_else(|e| {
            panic!(
                "/stats is not JSON ({e}): {}",
                String::from_utf8_lossy(&resp.body)
            )
        })
    }

    /// Asserts the server is alive and serves a fresh client: a handshake, an echo and
    /// a clean closing handshake.
    pub fn assert_serves(&mut self) {
        self.assert_running();
        let mut ws = self.open();
        ws.send_frame(true, OpCode::Text, "still serving ✓".as_bytes());
        ws.expect_frame(true, op::TEXT, "still serving ✓".as_bytes());
        ws.send_frame(true, OpCode::Close, &close_payload(1000, ""));
        ws.expect_close(1000);
        ws.expect_eof();
        self.assert_running();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- wsreactor log (last 100 lines) ---\n{}",
                self.log_tail(100)
            );
        }
    }
}

/// The address in a log line such as `[... INFO wsreactor::server] listening on ADDR`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    line.split("listening on ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A valid upgrade request for `path` (with the RFC sample key) plus `extra` header
/// lines, each ending in CRLF.
pub fn upgrade_request(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         {extra}\r\n"
    )
    .into_bytes()
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts a correct 101 for the RFC sample key (§4.2.2).
    pub fn assert_switching(&self) {
        assert_eq!(self.status, 101, "expected 101: {self:?}");
        assert_eq!(
            self.header("sec-websocket-accept"),
            Some(ACCEPT),
            "{self:?}"
        );
        assert!(
            self.header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "{self:?}"
        );
        assert!(
            self.header("connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")),
            "{self:?}"
        );
    }
}

/// A frame as the server sent it, parsed by [`Raw::try_read_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a Close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "not a Close frame: {self:?}");
        match self.payload[..] {
            [hi, lo, ..] => Some(u16::from_be_bytes([hi, lo])),
            _ => None,
        }
    }
}

/// A masked client frame, built with the crate's own header encoder.
pub fn client_frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader {
        fin,
        rsv1: false,
        opcode,
        mask: Some(MASK),
        payload_len: payload.len() as u64,
    };
    let (head, len) = header.encode();
    let mut out = head[..len].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], MASK, 0);
    out
}

/// A frame built by hand from its first byte (FIN, RSV, opcode), for frames the crate's
/// types cannot express: reserved opcodes, RSV bits, unmasked client frames.
pub fn raw_frame(first_byte: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A Close frame body: the code in network order, then the reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(reason.as_bytes());
    out
}

/// A raw TCP client with a small read-ahead buffer, so bytes after an HTTP head (frames
/// the server sent right behind its 101) are never lost.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects with [`IO_TIMEOUT`] on connect, every read and every write.
    pub fn connect(addr: SocketAddr) -> Raw {
        assert!(addr.ip().is_loopback(), "tests only talk to loopback");
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Wraps a stream that is already past its handshake.
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Changes the read timeout (never to "none").
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes: {e}", bytes.len()));
    }

    /// Sends one masked client frame.
    pub fn send_frame(&mut self, fin: bool, opcode: OpCode, payload: &[u8]) {
        self.send(&client_frame(fin, opcode, payload));
    }

    /// Ends our side of the connection (sends FIN).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes sure `n` bytes are buffered. `Ok(false)` on a clean EOF with nothing
    /// buffered; an EOF part-way through is an error.
    fn need(&mut self, n: usize) -> io::Result<bool> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF after {} of {n} bytes", self.buf.len()),
                ));
            }
        }
        Ok(true)
    }

    /// Reads one HTTP response: head, and a body of `Content-Length` bytes if present.
    pub fn read_response(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.buf.len() < 64 * 1024, "response head too long");
            match self.fill() {
                Ok(0) => panic!(
                    "EOF before a complete response head; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "reading a response head: {e}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        };
        let head = String::from_utf8(self.buf[..head_end - 4].to_vec())
            .expect("the response head is UTF-8");
        self.buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (name, value) = l
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {l:?}"));
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("numeric Content-Length");
            match self.need(len) {
                Ok(true) => {}
                Ok(false) => panic!("EOF before a {len}-byte body"),
                Err(e) => panic!("reading a {len}-byte body: {e}"),
            }
            resp.body = self.buf.drain(..len).collect();
        }
        resp
    }

    /// Reads one server frame with an independent parser; `Ok(None)` on a clean EOF
    /// between frames. Asserts what RFC 6455 requires of every server frame: unmasked
    /// (§5.1), no RSV bits (§5.2), a known opcode, control frames short and whole
    /// (§5.5), and the minimal length encoding (§5.2: "the minimal number of bytes").
    pub fn try_read_frame(&mut self) -> io::Result<Option<Frame>> {
        Ok(self.try_read_any_frame(false)?.map(|(_, frame)| frame))
    }

    /// Reads one server frame of a connection that negotiated permessage-deflate, with
    /// whether RSV1 (compressed) is set: only on a data message's first frame (RFC 7692
    /// §6). Asserts the rest as [`try_read_frame`](Self::try_read_frame) does.
    pub fn read_deflate_frame(&mut self) -> (bool, Frame) {
        match self.try_read_any_frame(true) {
            Ok(Some(read)) => read,
            Ok(None) => panic!("EOF where a frame was expected"),
            Err(e) => panic!("reading a frame: {e} (kind {:?})", e.kind()),
        }
    }

    fn try_read_any_frame(&mut self, deflate: bool) -> io::Result<Option<(bool, Frame)>> {
        if !self.need(2)? {
            return Ok(None);
        }
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let rsv1 = b0 & 0x40 != 0;
        let rsv = if deflate { 0x30 } else { 0x70 };
        assert_eq!(b0 & rsv, 0, "server frame with RSV bits: {b0:#04x}");
        assert!(
            !rsv1 || matches!(opcode, 0x1 | 0x2),
            "RSV1 on a frame that does not start a data message: {b0:#04x}"
        );
        assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
        assert!(
            matches!(opcode, 0x0..=0x2 | 0x8..=0xA),
            "server frame with reserved opcode {opcode:#x}"
        );
        let (len, head) = match b1 & 0x7F {
            126 => {
                self.need(4)?;
                let len = u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
                assert!(len >= 126, "non-minimal 16-bit length {len}");
                (len, 4)
            }
            127 => {
                self.need(10)?;
                let len = u64::from_be_bytes(self.buf[2..10].try_into().unwrap());
                assert!(len > 0xFFFF, "non-minimal 64-bit length {len}");
                assert_eq!(len >> 63, 0, "64-bit length with the top bit set");
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode >= 0x8 {
            assert!(fin, "fragmented control frame from the server");
            assert!(len <= 125, "control frame of {len} bytes from the server");
        }
        let total = head + usize::try_from(len).expect("frame fits in memory");
        self.need(total)?;
        let payload = self.buf[head..total].to_vec();
        self.buf.drain(..total);
        Ok(Some((
            rsv1,
            Frame {
                fin,
                opcode,
                payload,
            },
        )))
    }

    /// Reads one frame; panics on EOF, an error or a timeout.
    pub fn read_frame(&mut self) -> Frame {
        match self.try_read_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => panic!("EOF where a frame was expected"),
            Err(e) => panic!("reading a frame: {e} (kind {:?})", e.kind()),
        }
    }

    /// Reads one whole data message, however the server framed it: its first frame, then
    /// continuations until FIN (§5.4; a large echo streams back as fragments). Returns
    /// it as one frame with FIN set and the first frame's opcode.
    pub fn read_message(&mut self) -> Frame {
        let mut message = self.read_frame();
        assert!(
            matches!(message.opcode, op::TEXT | op::BINARY),
            "expected a data message, got {}",
            describe(&message)
        );
        while !message.fin {
            let next = self.read_frame();
            assert_eq!(
                next.opcode,
                op::CONTINUATION,
                "a fragmented message interrupted by {}",
                describe(&next)
            );
            message.fin = next.fin;
            message.payload.extend_from_slice(&next.payload);
        }
        message
    }

    /// Reads one whole data message and asserts it is exactly this.
    pub fn expect_message(&mut self, opcode: u8, payload: &[u8]) {
        let message = self.read_message();
        let want = Frame {
            fin: true,
            opcode,
            payload: payload.to_vec(),
        };
        if message != want {
            panic!("expected {}, got {}", describe(&want), describe(&message));
        }
    }

    /// Reads one frame and asserts it is exactly this.
    pub fn expect_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = self.read_frame();
        let want = Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        };
        if frame != want {
            panic!("expected {}, got {}", describe(&want), describe(&frame));
        }
    }

    /// Reads one frame, asserts it is a Close with `code` and a UTF-8 reason, and returns
    /// the reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        let frame = self.read_frame();
        assert_eq!(
            frame.opcode,
            op::CLOSE,
            "expected Close {code}, got {}",
            describe(&frame)
        );
        assert_eq!(
            frame.close_code(),
            Some(code),
            "expected Close {code}, got {}",
            describe(&frame)
        );
        String::from_utf8(frame.payload[2..].to_vec()).expect("the close reason is UTF-8")
    }

    /// Asserts the server ends the connection cleanly (EOF) with nothing more sent.
    pub fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "expected EOF, but {} more bytes arrived: {:?}",
            self.buf.len(),
            String::from_utf8_lossy(&self.buf[..self.buf.len().min(200)])
        );
        match self.fill() {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected EOF, but {n} more bytes arrived: {:?}",
                String::from_utf8_lossy(&self.buf[..n.min(200)])
            ),
            Err(e) => panic!("expected EOF, got {e} (kind {:?})", e.kind()),
        }
    }
}

/// A short human form of a frame for assertion messages.
pub fn describe(frame: &Frame) -> String {
    let name = match frame.opcode {
        op::CONTINUATION => "Continuation",
        op::TEXT => "Text",
        op::BINARY => "Binary",
        op::CLOSE => "Close",
        op::PING => "Ping",
        op::PONG => "Pong",
        _ => "?",
    };
    let shown = &frame.payload[..frame.payload.len().min(64)];
    format!(
        "{name}(fin={}, {} bytes: {:?})",
        frame.fin,
        frame.payload.len(),
        String::from_utf8_lossy(shown)
    )
}

/// A `tungstenite` client over a `std` stream with [`IO_TIMEOUT`] on every read and
/// write, past its own opening handshake to `/echo`.
pub fn ws_client(
    addr: SocketAddr,
    config: Option<tungstenite::protocol::WebSocketConfig>,
) -> tungstenite::WebSocket<TcpStream> {
    ws_client_with_timeout(addr, config, IO_TIMEOUT)
}

/// [`ws_client`] with another socket timeout.
pub fn ws_client_with_timeout(
    addr: SocketAddr,
    config: Option<tungstenite::protocol::WebSocketConfig>,
    timeout: Duration,
) -> tungstenite::WebSocket<TcpStream> {
    assert!(addr.ip().is_loopback(), "tests only talk to loopback");
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.set_write_timeout(Some(timeout)).unwrap();
    stream.set_nodelay(true).unwrap();
    match tungstenite::client::client_with_config(format!("ws://{addr}/echo"), stream, config) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status().as_u16(), 101);
            ws
        }
        Err(e) => panic!("tungstenite handshake: {e}"),
    }
}

/// Deterministic pseudo-random bytes (xorshift), so large payloads are not periodic.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Retries `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system) a process has used, in seconds, from /proc/PID/stat.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are the 12th and
    // 13th of them (fields 14 and 15 of proc(5)).
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// What a finished `wsreactor load` run printed.
pub struct LoadRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl LoadRun {
    /// Asserts that the run succeeded with nothing failed and every connection closed
    /// cleanly, and returns its `--json` report.
    pub fn clean_report(&self) -> serde_json::Value {
        let r = self.report();
        assert!(
            self.status.success(),
            "exit status {}:\n{r:#}\n{}",
            self.status,
            self.stderr
        );
        assert_eq!(r["ok"], true, "{r:#}");
        assert_eq!(r["failed"], 0, "{r:#}");
        assert_eq!(r["close_timeout"], 0, "{r:#}");
        assert_eq!(r["close_unclean"], 0, "{r:#}");
        r
    }

    /// The `--json` report on stdout.
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "the report is not JSON ({e}):\n{}\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `wsreactor load --addr ADDR ARGS…` to completion. Its output is drained on
/// threads of its own, so that a full pipe never blocks it; a run still going after
/// `timeout` is hung: it is killed and the test fails.
pub fn run_load(addr: &str, args: &[&str], timeout: Duration) -> LoadRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsreactor"))
        .args(["load", "--addr", addr])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsreactor load");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wsreactor load did not finish within {timeout:?}:\n{}",
                stderr.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(50));
    };
    LoadRun {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
