//! Admission: accepting clients until nobody waits, making each a connection that
//! waits for its request head, and, at the descriptor limit, ending the connection that
//! has waited longest for its head so that a newcomer can take its place.

use mio::net::TcpStream;
use mio::Token;
use slab::Slab;

use super::Reactor;
use crate::protocol::deadline::Tick;
use crate::server::accept::Accepted;
use crate::server::connection::{Connection, Shared};
use crate::server::env::Env;
use crate::server::transport::Transport;

impl<T: Transport> Reactor<T> {
    /// Accepts until nobody waits. A client over the descriptor limit takes the place of
    /// the connection that has waited longest for its request head, so connections that
    /// send half a head and stall cannot lock anyone out and no open WebSocket is dropped
    /// for a newcomer; with none to give way, it is told 503.
    pub(super) fn accept(&mut self) {
        self.heads.begin_pass();
        loop {
            match self.acceptor.next(self.conns.len(), &mut self.stats) {
                Accepted::Client(socket) => self.admit(socket),
                Accepted::OverLimit(socket) => {
                    if self.give_way() {
                        self.acceptor.made_room();
                        self.admit(socket);
                    } else {
                        self.acceptor.shed(socket, &mut self.stats);
                    }
                }
                Accepted::Done => return,
            }
        }
    }

    /// Makes an accepted socket a connection, waiting for its request head.
    fn admit(&mut self, socket: TcpStream) {
        let transport = match T::accept(&self.layer) {
            Ok(transport) => transport,
            Err(e) => {
                return self
                    .warnings
                    .warn(|| format!("cannot serve a connection: {e}"))
            }
        };
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        match Connection::new(socket, token, self.poll.registry(), self.tick, transport) {
            Ok(conn) => {
                entry.insert(conn);
                self.stats.accepted_total += 1;
                self.stats.connections += 1;
                let conns = &self.conns;
                self.heads
                    .push(token, self.tick, |t, since| waiting(conns, t, since));
            }
            // E.g. ENOSPC: fs.epoll.max_user_watches is used up.
            Err(e) => self
                .warnings
                .warn(|| format!("cannot watch a new connection: {e}")),
        }
    }

    /// Ends the connection that has waited longest for its request head, if any, to
    /// free its descriptor. Returns whether one gave way.
    fn give_way(&mut self) -> bool {
        let conns = &self.conns;
        let Some(token) = self.heads.pop_oldest(|t, since| waiting(conns, t, since)) else {
            return false;
        };
        let Some(conn) = self.conns.get_mut(token.0) else {
            return false;
        };
        let mut sh = shared!(self);
        conn.give_way(token, &mut sh);
        self.close(token);
        true
    }
}

/// Whether the connection in `token`'s slot still waits for the request head it began
/// waiting for at `since` (see `HeadQueue`).
pub(super) fn waiting<T: Transport>(
    conns: &Slab<Connection<T>>,
    token: Token,
    since: Tick,
) -> bool {
    conns
        .get(token.0)
        .is_some_and(|conn| conn.awaiting_head_since() == Some(since))
}
