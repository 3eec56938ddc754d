//! A load connection's output: the protocol core writes through a [`Link`] to the
//! socket, and what the socket does not take waits in the spill; a spill past its cap
//! (`max_spill`) counts as stalled and fails the connection.

use std::io;

use mio::net::TcpStream;

use super::layer::{Layer, Out};
use super::{Conn, Phase};
use crate::load::process::env::Env;
use crate::load::process::socket::io_failure;
use crate::load::wire::Failure;
use crate::protocol::client::ClientConnection;
use crate::stream::{Link, Spilled};

impl<L: Layer> Conn<L> {
    /// Runs `f` on the protocol core with this connection's output, then checks the
    /// output: a write error or a spill past its cap fails the connection.
    pub(super) fn with_core<T>(
        &mut self,
        env: &mut Env,
        f: impl FnOnce(&mut ClientConnection, &mut Env, &mut Out<'_, TcpStream>) -> T,
    ) -> Result<T, Failure> {
        let Phase::Running { core, .. } = &mut self.phase else {
            unreachable!("only a running connection has a core");
        };
        let (layer, stream, spill) = (&mut self.layer, &mut self.stream, &mut self.spill);
        let out = output(layer, stream, spill, env, io_failure, |env, out| {
            f(core, env, out)
        })?;
        if self.spill.unsent() > env.cfg.max_spill {
            return Err(Failure::SendStalled);
        }
        Ok(out)
    }

    /// Writes spilled output until done or `WouldBlock`.
    pub(super) fn flush(&mut self) -> Result<(), Failure> {
        self.spill
            .flush(&mut self.stream)
            .map_err(|e| io_failure(&e))?;
        self.spill.tidy();
        Ok(())
    }
}

/// Runs `f` with the connection's output: written through a [`Link`] as it comes, or
/// gathered and then sealed by the layer. A write error counts as `on_io` says.
pub(super) fn output<L: Layer, T>(
    layer: &mut L,
    stream: &mut TcpStream,
    spill: &mut Spilled,
    env: &mut Env,
    on_io: fn(&io::Error) -> Failure,
    f: impl FnOnce(&mut Env, &mut Out<'_, TcpStream>) -> T,
) -> Result<T, Failure> {
    if !L::SEALS {
        let mut out = Out::new(Link::new(stream, spill), None);
        let r = f(env, &mut out);
        out.finish().map_err(|e| on_io(&e))?;
        return Ok(r);
    }
    // The process's plaintext buffer, lent for the call (it stays allocated).
    let mut plain = env
        .tls
        .as_mut()
        .map(|t| std::mem::take(&mut t.plain))
        .unwrap_or_default();
    let mut out = Out::new(Link::new(&mut *stream, &mut *spill), Some(&mut plain));
    let r = f(env, &mut out);
    let sent = out
        .finish()
        .map_err(|e| on_io(&e))
        .and_then(|_| layer.send(stream, spill, env, &plain));
    plain.clear();
    if let Some(t) = env.tls.as_mut() {
        t.plain = plain;
    }
    sent.map(|_| r)
}
