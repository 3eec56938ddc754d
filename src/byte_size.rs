//! Byte sizes on the command line: every flag that takes bytes takes units too
//! (`256MiB`, `1GiB`, `64KiB`, `16777216`), parsed by the `parse-size` crate.

/// Parses a byte size for clap: a plain number of bytes, or one with a unit (binary
/// `KiB`/`MiB`/`GiB`…, decimal `KB`/`MB`/`GB`…; case-insensitive, the `B` optional).
pub fn parse(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s)
        .map_err(|e| format!("{e}: expected bytes, e.g. 65536, 256MiB or 1GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse("16777216"), Ok(16 << 20));
        assert_eq!(parse("256MiB"), Ok(256 << 20));
        assert_eq!(parse("1GiB"), Ok(1 << 30));
        assert_eq!(parse("64 KiB"), Ok(64 << 10));
        assert_eq!(parse("1gb"), Ok(1_000_000_000));
        assert!(parse("lots").is_err());
        assert!(parse("-1").is_err());
    }
}
