//! One connection's context under context takeover (RFC 7692 §7.1.1): what a kept
//! compression context amounts to between messages. LZ77 refers back at most one window,
//! so the last window of a direction's uncompressed bytes is all of it: primed into the
//! reactor's shared compressor or decompressor as a dictionary, it stands for a zlib
//! stream kept per connection (for 9 bits, 512 bytes instead of the hundreds of KiB a
//! stream holds once it has been used).

/// The last window of uncompressed bytes of each direction that keeps its context;
/// empty until a message has gone that way.
#[derive(Debug, Default)]
pub(super) struct Context {
    /// What the client sent, inflated: the context its next message refers to.
    pub(super) inbound: Vec<u8>,
    /// What the server sent, before compression: the context the client inflates our
    /// next message after.
    pub(super) outbound: Vec<u8>,
}

impl Context {
    /// Bytes it holds (its buffers' capacities).
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.inbound.capacity() + self.outbound.capacity()
    }
}

/// Keeps `window` as the last `size` bytes of what it held followed by `more`. Its
/// buffer is made once with room for exactly `size` bytes and never grows.
pub(super) fn slide(window: &mut Vec<u8>, size: usize, more: &[u8]) {
    if window.capacity() < size {
        window.reserve_exact(size - window.len());
    }
    if more.len() >= size {
        window.clear();
        window.extend_from_slice(&more[more.len() - size..]);
        return;
    }
    let excess = (window.len() + more.len()).saturating_sub(size);
    window.drain(..excess);
    window.extend_from_slice(more);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_slides_over_what_passes_and_holds_no_more_than_its_size() {
        let mut window = Vec::new();
        let mut all = Vec::new();
        for piece in [&b"abc"[..], b"", b"defghij", &[b'x'; 20], b"klm", b"n"] {
            slide(&mut window, 16, piece);
            all.extend_from_slice(piece);
            let tail = &all[all.len().saturating_sub(16)..];
            assert_eq!(window, tail);
            assert_eq!(window.capacity(), 16, "made once, never grown");
        }
    }
}
