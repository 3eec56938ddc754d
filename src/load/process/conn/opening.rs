//! A load connection's opening: the non-blocking connect completing, the layer's own
//! handshake (TLS) done, the opening
//! handshake's request, and the 101 that makes it established (its handshake latency
//! recorded; then the verification echo, or in chat mode the join that verifies it).

use std::io;

use super::layer::Layer;
use super::{Conn, Echo, End, Phase, ESTABLISHED, VERIFIED};
use crate::load::process::env::{Env, NEVER};
use crate::load::process::socket::{connect_failure, io_failure};
use crate::load::wire::Failure;
use crate::protocol::client::ClientConnection;
use crate::protocol::handshake::client_key;

impl<L: Layer> Conn<L> {
    /// Readiness while connecting: once the connect has completed, sends the opening
    /// handshake's request. Returns whether it did (if not, the connect is still under
    /// way and the next edge brings it here again).
    pub(super) fn connect_ready(
        &mut self,
        env: &mut Env,
        readable: bool,
        writable: bool,
    ) -> Result<bool, Failure> {
        // Writable alone is the connect completing: a failed connect also reports an
        // error and a hang-up, which the driver passes on as readable. Only then, or
        // on a wake-up without writable, are the two syscalls of the check needed (a
        // million connections save two million). Were the socket still connecting,
        // the request would wait in the spill for the next writable edge.
        if (readable || !writable) && !self.connected()? {
            return Ok(false);
        }
        if !self.layer.start(&mut self.stream, &mut self.spill, env)? {
            // TLS: the request waits for its handshake (`Conn::secured`).
            self.phase = Phase::Securing;
            return Ok(true);
        }
        self.open_websocket(env, connect_failure)?;
        Ok(true)
    }

    /// The layer's handshake (TLS) is done: the WebSocket handshake starts. Once per
    /// connection: kept out of the read loop.
    #[inline(never)]
    pub(super) fn secured(&mut self, env: &mut Env) -> Result<(), Failure> {
        self.open_websocket(env, io_failure)
    }

    /// Sends the opening handshake's request.
    fn open_websocket(
        &mut self,
        env: &mut Env,
        on_io: fn(&io::Error) -> Failure,
    ) -> Result<(), Failure> {
        let key = client_key(env.rng.nonce());
        let (stream, spill) = (&mut self.stream, &mut self.spill);
        let core = self.layer.output(stream, spill, env, on_io, |env, out| {
            let offer = env.cfg.deflate;
            ClientConnection::start(&env.cfg.host, &env.cfg.path, key, offer, out)
        })?;
        self.phase = Phase::Running {
            core,
            echo: Echo::Idle { seq: 0 },
        };
        Ok(())
    }

    /// Whether the pending connect has completed (mio: check `take_error`, then
    /// `peer_addr`; `NotConnected` means still in progress, e.g. a spurious wake-up).
    fn connected(&mut self) -> Result<bool, Failure> {
        match self.stream.take_error() {
            Ok(Some(e)) | Err(e) => return Err(connect_failure(&e)),
            Ok(None) => {}
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(connect_failure(&e)),
        }
    }

    /// The 101 has arrived: the connection is established (its handshake latency
    /// feeds the ramp cap) and now needs verifying.
    pub(super) fn on_established(&mut self, env: &mut Env) -> Result<(), End> {
        let c = &mut env.stats.counters;
        c.established += 1;
        c.open += 1;
        if let Some(n) = env.stats.per_source.get_mut(usize::from(self.source)) {
            *n += 1;
        }
        let latency = env.now_us32().wrapping_sub(self.since_us);
        env.stats.record_handshake(u64::from(latency));
        if let Some(w) = &mut env.workload {
            w.on_handshake(latency);
        }
        env.ramp_cap.observe(u64::from(latency));
        self.flags |= ESTABLISHED;
        let Phase::Running { echo, core } = &mut self.phase else {
            unreachable!("opened by its core");
        };
        if core
            .deflate()
            .is_some_and(|a| a.server_takeover() && a.client_takeover())
        {
            env.stats.counters.takeover += 1;
        }
        if env.chat.is_some() {
            // The server seats a member before it answers 101: the join is done, and
            // what it receives from now on is checked against the room's sequence.
            *echo = Echo::Chat {
                next: 0,
                matched: 0,
            };
            self.deadline_ms = NEVER;
            self.flags |= VERIFIED;
            env.stats.counters.verified += 1;
            env.stats.counters.pending -= 1;
            return Ok(());
        }
        *echo = Echo::Idle { seq: 0 };
        self.send_echo(env)
    }
}
