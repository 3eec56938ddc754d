//! The reactor's hook into the bus: what it calls at each point of its turn, each call
//! doing nothing for a process without a bus, and what the bus holds kept counted in
//! the memory budget. Here rather than in the reactor, so that the event loop stays one
//! line per concern.

use std::io;
use std::time::Instant;

use mio::{Registry, Token};

use super::Bus;
use crate::server::config::Config;
use crate::server::env::Broadcast;
use crate::server::fan_out::FanOut;
use crate::server::rooms::Rooms;
use crate::server::stats::Stats;
use crate::stream::Held;

/// A process's bus, if it has one, and what of it the budget counts.
#[derive(Debug)]
pub struct Pubsub {
    bus: Option<Bus>,
    /// The reactor's poll registry (a clone: its own descriptor of the same epoll), so
    /// that the reactor's calls stay short.
    registry: Registry,
    /// What the bus held when last counted in the budget.
    counted: usize,
}

impl Pubsub {
    /// The bus `config` asks for (see [`Bus::new`]), and the rooms, which tell it when
    /// they come and go.
    pub fn new(config: &Config, registry: &Registry) -> io::Result<(Pubsub, Rooms)> {
        let bus = Bus::new(config, config.bus_limit(), registry)?;
        let mut rooms = Rooms::default();
        if bus.is_some() {
            rooms.watch();
        }
        let registry = registry.try_clone()?;
        let pubsub = Pubsub {
            bus,
            registry,
            counted: 0,
        };
        Ok((pubsub, rooms))
    }

    /// Whether `token` is one of the bus's.
    pub fn owns(&self, token: Token) -> bool {
        self.bus.as_ref().is_some_and(|b| b.owns(token))
    }

    /// An event on one of the bus's sockets.
    pub fn event(&mut self, token: Token, stats: &mut Stats) {
        if let Some(bus) = &mut self.bus {
            bus.event(token, &self.registry, stats);
        }
    }

    /// Publishes the chat messages a drive completed (see [`Bus::publish_all`]).
    pub fn publish(&mut self, outbox: &[Broadcast], rooms: &Rooms, stats: &mut Stats) {
        if let Some(bus) = &mut self.bus {
            bus.publish_all(outbox, rooms, &self.registry, stats);
        }
    }

    /// The bus's share of a reactor turn (see [`Bus::turn`]); what it holds afterwards
    /// is counted in `held`, the budget's.
    pub fn turn(
        &mut self,
        now: Instant,
        (rooms, fan_out): (&mut Rooms, &mut FanOut),
        stats: &mut Stats,
        held: &mut Held,
    ) {
        let Some(bus) = &mut self.bus else {
            return;
        };
        bus.turn(now, rooms, fan_out, &self.registry, stats);
        let now_held = bus.held();
        held.bytes = held.bytes + now_held - self.counted;
        self.counted = now_held;
    }

    /// When the bus next has something to do on its own (a reconnect).
    pub fn wake(&self) -> Option<Instant> {
        self.bus.as_ref().and_then(Bus::next_wake)
    }

    /// Whether the bus may have more to read at once (the reactor must not sleep).
    pub fn is_busy(&self) -> bool {
        self.bus.as_ref().is_some_and(Bus::has_work)
    }
}
