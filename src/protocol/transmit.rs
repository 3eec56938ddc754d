//! Where a sans-IO connection's output goes: the caller's queue or socket, never ours.

use std::rc::Rc;

/// A sink for a connection's output. Everything a connection sends goes through it, in
/// order, after everything transmitted before.
pub trait Transmit {
    /// Sends `head` then `body` (a frame header and its payload, or a message head and
    /// its body). Two parts, so that a payload is sent from where it lies (a server echo
    /// straight from the read buffer) with its header from the stack.
    fn transmit(&mut self, head: &[u8], body: &[u8]);

    /// Sends `frame`, whole, encoded once and shared by every connection it goes to (a
    /// chat message for all the members of a room). By default the bytes are copied like
    /// any others; a sink that queues output can keep the shared bytes instead, so that a
    /// room's backlog is one copy among all its members.
    fn transmit_shared(&mut self, frame: &Rc<[u8]>) {
        self.transmit(frame, &[]);
    }
}

impl Transmit for Vec<u8> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.extend_from_slice(head);
        self.extend_from_slice(body);
    }
}
