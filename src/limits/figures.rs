//! Numbers as a reader of the limits report sees them: counts with their thousands
//! grouped, sizes in binary units, and unknown or unlimited values spelled out.

/// `20000` → `20,000`; unknown and unlimited values spelled out.
pub(super) fn count(n: Option<u64>) -> String {
    match n {
        None => "unknown".into(),
        // RLIM_INFINITY is u64::MAX, and systemd sets fs.file-max to LONG_MAX: no limit.
        Some(n) if n >= i64::MAX as u64 => "unlimited".into(),
        Some(n) => {
            let digits = n.to_string().into_bytes();
            let groups: Vec<_> = digits
                .rchunks(3)
                .rev()
                .map(String::from_utf8_lossy)
                .collect();
            groups.join(",")
        }
    }
}

/// `1536` → `1.5 KiB`; unknown values spelled out.
pub(super) fn size(bytes: Option<u64>) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match bytes {
        None => "unknown".into(),
        Some(b) => UNITS.iter().find(|&&(_, u)| b >= u).map_or_else(
            || format!("{b} B"),
            |&(name, u)| format!("{:.1} {name}", b as f64 / u as f64),
        ),
    }
}
