//! The fuzz input layout (see the `testkit` module doc): flags, steps, payload.

/// A fuzz input split into its control bytes and its payload (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Byte 0: what each target's bits choose.
    pub flags: u8,
    /// The chunk lengths the payload is cut into, used cyclically.
    pub steps: &'a [u8],
    /// The bytes on the wire.
    pub payload: &'a [u8],
}

impl<'a> Input<'a> {
    /// Splits `data` into flags, steps and payload as the module doc lays them out; a
    /// short input has flags 0 and no steps or payload past its end.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        let flags = data.first().copied().unwrap_or(0);
        let n = data.get(1).map_or(0, |&n| usize::from(n % 16));
        let rest = data.get(2..).unwrap_or(&[]);
        let (steps, payload) = rest.split_at(n.min(rest.len()));
        Input {
            flags,
            steps,
            payload,
        }
    }

    /// The payload cut into the pieces the steps choose (one piece without a non-zero
    /// step); empty pieces are kept, as a read of nothing new.
    pub fn chunks(&self) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut rest = self.payload;
        if self.steps.iter().any(|&s| s != 0) {
            for &step in self.steps.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(usize::from(step).min(rest.len()));
                out.push(piece);
                rest = tail;
            }
        }
        if !rest.is_empty() || out.is_empty() {
            out.push(rest);
        }
        out
    }

    /// Where the pieces end, ascending; the last is the payload's length.
    pub(super) fn chunk_ends(&self) -> Vec<usize> {
        self.chunks()
            .iter()
            .scan(0, |at, piece| {
                *at += piece.len();
                Some(*at)
            })
            .collect()
    }

    /// The three ways every target delivers its payload, as the ends of the prefixes
    /// seen: whole, in the fuzzer's pieces, and one byte at a time (an empty read first).
    pub(super) fn deliveries(&self) -> [Vec<usize>; 3] {
        let len = self.payload.len();
        [vec![len], self.chunk_ends(), (0..=len).collect()]
    }
}
