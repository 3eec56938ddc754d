//! What the server lends a connection's sans-IO session while it runs: the options, the
//! counters, the rooms, the outbox for chat messages, the time and the whole server's
//! view. Its own file, so that whatever a session calls (the routes that show the
//! server) can take it without depending on the session.

use super::config::Config;
use super::room_message::RoomMessage;
use super::rooms::Rooms;
use super::stats::Stats;
use super::view::View;
use crate::protocol::deadline::Tick;
use crate::protocol::deflate::Codec;

/// A chat message encoded once as a whole frame, from its sender (by id, the reactor's
/// slab key), to be queued for every member of the sender's room.
pub type Broadcast = (usize, RoomMessage);

/// What the server lends a session while it runs.
#[derive(Debug)]
pub struct Env<'a> {
    /// The server's options.
    pub config: &'a Config,
    /// This process's counters.
    pub stats: &'a mut Stats,
    /// This process's chat rooms.
    pub rooms: &'a mut Rooms,
    /// Chat messages completed during this call, from sender to the sender's room;
    /// the reactor fans them out once the sender is done.
    pub outbox: &'a mut Vec<Broadcast>,
    /// The reactor's permessage-deflate compressor and decompressor, made when a
    /// connection first needs them (`None` until then, and always without `--deflate`).
    pub codec: &'a mut Option<Codec>,
    /// The time, read once per reactor turn.
    pub now: Tick,
    /// Milliseconds since this process started.
    pub uptime_ms: u64,
    /// The whole server's counters, as a worker's supervisor sent them last (`None` in
    /// a lone process, or before the first one came).
    pub view: Option<&'a View>,
}
