//! Latency histograms: one set of bounds for all of them (so any two merge), and their
//! portable text form for the trip from a worker to the parent.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// The largest latency a histogram holds (one hour, in microseconds); larger values are
/// recorded as this (timeouts are far shorter, so nothing real is clipped).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// A fresh latency histogram: 1 µs to [`HIST_MAX_US`], 3 significant digits. Every
/// histogram uses these bounds so that merging never fails.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid fixed bounds")
}

/// A histogram as base64 of its HdrHistogram V2 encoding (compact and portable).
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into a Vec cannot fail");
    BASE64.encode(bytes)
}

/// The histogram [`encode_histogram`] wrote.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64
        .decode(s)
        .map_err(|e| format!("histogram base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_the_wire_and_merge() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..=1000u64 {
            a.record(v).unwrap();
            b.record(v * 1000).unwrap();
        }
        b.saturating_record(u64::MAX);
        let a2 = decode_histogram(&encode_histogram(&a)).unwrap();
        let b2 = decode_histogram(&encode_histogram(&b)).unwrap();
        assert_eq!((a2.len(), a2.max()), (a.len(), a.max()));
        let mut merged = new_histogram();
        merged.add(&a2).unwrap();
        merged.add(&b2).unwrap();
        assert_eq!(merged.len(), 2001);
        assert_eq!(merged.min(), 1);
        assert!(merged.max() >= HIST_MAX_US - HIST_MAX_US / 1000);
        // The median of 1..1000 ∪ 1000..1e6 sits at the join.
        let p50 = merged.value_at_quantile(0.5);
        assert!((990..=1010).contains(&p50), "{p50}");
        assert!(decode_histogram("not base64!").is_err());
    }
}
