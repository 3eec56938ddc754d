//! A load connection's compressed echoes (permessage-deflate, RFC 7692 §6: RSV1 on a
//! message's first frame): deflate data cannot be checked piece by piece as it streams
//! back, so a compressed echo that arrives in pieces is gathered in the connection's
//! spill while it is in progress (the spill exists only then), inflated whole by the
//! process's codec once it ends, and checked as one uncompressed chunk by the usual
//! checks.

use super::layer::Layer;
use super::{Conn, Echo, End, Phase};
use crate::load::process::env::Env;
use crate::load::wire::Failure;
use crate::protocol::deflate::Agreement;
use crate::protocol::error::ProtocolError;
use crate::protocol::frame::OpCode;
use crate::protocol::receiver::DataChunk;

impl<L: Layer> Conn<L> {
    /// Gathers a piece of a compressed echo; once the message is whole, inflates it
    /// (no larger than the echo expected: a longer one is a mismatch found while
    /// inflating, a bomb never inflated whole) and checks it.
    pub(super) fn on_compressed_chunk(
        &mut self,
        env: &mut Env,
        chunk: &DataChunk<'_>,
    ) -> Result<(), End> {
        let expected = match self.phase {
            Phase::Running {
                echo: Echo::Waiting { seq, .. },
                ..
            } => env.cfg.echo_shape(seq).1,
            Phase::Running {
                echo: Echo::Window { next, sent, .. },
                ..
            } if next != sent => env.cfg.message_size,
            _ => return Err(Failure::UnexpectedMessage.into()),
        };
        // A message whole in one chunk (the usual echo) is inflated where it lies;
        // only one that arrives in pieces is gathered.
        let whole =
            chunk.opcode != OpCode::Continuation && chunk.starts_frame() && chunk.ends_message();
        let gathered;
        let compressed = if whole {
            chunk.payload
        } else {
            let spill = &mut self.spill.get().gathered;
            spill.extend_from_slice(chunk.payload);
            // Deflate data is at most a little longer than what it holds (stored
            // blocks: 5 bytes per 64 KiB); much longer is not our echo.
            if spill.len() as u64 > u64::from(expected) + u64::from(expected / 64) + 64 {
                return Err(Failure::EchoMismatch.into());
            }
            if !chunk.ends_message() {
                return Ok(());
            }
            gathered = std::mem::take(spill);
            &gathered[..]
        };
        let mut plain = std::mem::take(&mut env.inflated);
        let Phase::Running { core, .. } = self.phase else {
            unreachable!("an echo arrives while running");
        };
        // The receiver refuses RSV1 unless deflate was agreed, and it is agreed only
        // when this process offered it, with its codec.
        let agreed = core.deflate().ok_or(Failure::ProtocolError)?;
        let id = self.id();
        let result = inflate(
            env,
            (id, agreed),
            compressed,
            chunk.message,
            expected,
            &mut plain,
        );
        let result = result.and_then(|()| {
            let whole = DataChunk {
                opcode: chunk.message,
                message: chunk.message,
                fin: true,
                compressed: false,
                frame_len: plain.len() as u64,
                offset: 0,
                payload: &plain,
            };
            self.on_echo_chunk(env, &whole)
        });
        env.inflated = plain;
        result
    }
}

/// Inflates a whole compressed message of `opcode` from connection `id` into `plain`,
/// at most `limit` bytes, after the server's context for it if the server keeps one.
fn inflate(
    env: &mut Env,
    (id, agreed): (usize, Agreement),
    compressed: &[u8],
    opcode: OpCode,
    limit: u32,
    plain: &mut Vec<u8>,
) -> Result<(), End> {
    let codec = env.out.deflate.as_mut().ok_or(Failure::ProtocolError)?;
    let text = opcode == OpCode::Text;
    match codec.inflate_from(id, agreed, compressed, text, u64::from(limit)) {
        Ok(inflated) => {
            plain.clear();
            plain.extend_from_slice(inflated);
            Ok(())
        }
        // Longer than the echo sent, or not the text it was: not our echo.
        Err(ProtocolError::MessageTooBig | ProtocolError::InvalidUtf8) => {
            Err(Failure::EchoMismatch.into())
        }
        Err(e) => {
            log::debug!("a compressed echo does not inflate: {e}");
            Err(Failure::ProtocolError.into())
        }
    }
}
