//! A load connection's output: the protocol core writes through a [`Link`] to the
//! socket, and what the socket does not take waits in the spill; a spill past its cap
//! (`max_spill`) counts as stalled and fails the connection.

use super::layer::Layer;
use super::{Conn, Phase};
use crate::load::process::env::Env;
use crate::load::process::socket::io_failure;
use crate::load::wire::Failure;
use crate::protocol::client::ClientConnection;

impl<L: Layer> Conn<L> {
    /// Runs `f` on the protocol core with this connection's output, then checks the
    /// output: a write error or a spill past its cap fails the connection.
    pub(super) fn with_core<T>(
        &mut self,
        env: &mut Env,
        f: impl FnOnce(&mut ClientConnection, &mut Env, &mut L::Out<'_>) -> T,
    ) -> Result<T, Failure> {
        let Phase::Running { core, .. } = &mut self.phase else {
            unreachable!("only a running connection has a core");
        };
        let (stream, spill) = (&mut self.stream, &mut self.spill);
        let out = self
            .layer
            .output(stream, spill, env, io_failure, |env, out| f(core, env, out))?;
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
