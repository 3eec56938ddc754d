//! Where a sans-IO connection's output goes: the caller's queue or socket, never ours.

/// A sink for a connection's output. `head` then `body` (a frame header and its
/// payload, or a message head and its body) go out in that order, after everything
/// transmitted before. Two parts, so that a payload is sent from where it lies (a
/// server echo straight from the read buffer) with its header from the stack.
pub trait Transmit {
    fn transmit(&mut self, head: &[u8], body: &[u8]);
}

impl Transmit for Vec<u8> {
    fn transmit(&mut self, head: &[u8], body: &[u8]) {
        self.extend_from_slice(head);
        self.extend_from_slice(body);
    }
}
