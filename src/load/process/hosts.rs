//! Load from many hosts (`--hosts c1=A-B,c2=C-D --remote 'ssh {host}'`): which host each
//! worker process runs on, the source addresses it binds there, and the command that
//! starts it there.
//!
//! Why a list of hosts: one host's client side runs out of descriptors and ports long
//! before a server does (about 1.2 million connections here, `fs.file-max`), so every
//! published benchmark of millions drives its server from several machines. Each host's
//! source addresses are given with it, not discovered there: the run's command line then
//! says exactly which addresses it used, and a host with addresses that must not be used
//! (a management interface) is never surprised.
//!
//! Pure data and arithmetic, so the parent and every worker derive the same placement
//! from the same command line.

use std::fmt;
use std::str::FromStr;

use super::addr::SourceRange;
use super::plan::WorkerSlot;

/// The placeholder in `--remote` that is replaced by a host's name.
pub const HOST_PLACEHOLDER: &str = "{host}";

/// One `--hosts` entry: `NAME` or `NAME=A-B` (the IPv4 source addresses the load binds
/// on that host; without them its kernel picks one, which reaches at most one port
/// range's worth of connections to one server port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadHost {
    /// What `{host}` in `--remote` becomes (an ssh destination, a namespace name).
    pub name: String,
    /// The source addresses on that host.
    pub sources: Option<SourceRange>,
}

impl FromStr for LoadHost {
    type Err = String;

    fn from_str(s: &str) -> Result<LoadHost, String> {
        let (name, sources) = match s.split_once('=') {
            Some((name, range)) => (name, Some(SourceRange::parse_any(range)?)),
            None => (s, None),
        };
        // The name becomes one word of a command line: nothing a shell would split or
        // expand on the far side of ssh.
        let fine = |b: u8| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b);
        if name.is_empty() || name.len() > 253 || !name.bytes().all(fine) {
            return Err(format!(
                "host {name:?}: want a name of letters, digits and - _ . @ : (then =A-B \
                 for its source addresses)"
            ));
        }
        Ok(LoadHost {
            name: name.to_owned(),
            sources,
        })
    }
}

impl fmt::Display for LoadHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sources {
            Some(range) => write!(f, "{}={range}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The host worker `slot` runs on: workers are dealt to hosts in turn, so with a
/// process count that is a multiple of the hosts' (see [`process_count`]) every host
/// runs as many workers and, by [`super::plan::share`], as many connections (±1).
pub fn host_of(hosts: &[LoadHost], slot: WorkerSlot) -> &LoadHost {
    &hosts[slot.index as usize % hosts.len()]
}

/// The workers of a run over `hosts` hosts that needs at least `needed` processes: a
/// multiple of the hosts, so each runs its equal part.
pub fn process_count(needed: u32, hosts: usize) -> u32 {
    let hosts = hosts.max(1) as u32;
    needed.max(1).div_ceil(hosts) * hosts
}

/// Where worker `slot`'s source addresses start in the run's list of every host's
/// addresses (hosts in `--hosts` order): its per-source counts go there, so two hosts'
/// first addresses are never summed as one.
pub fn source_offset(hosts: &[LoadHost], slot: WorkerSlot) -> usize {
    let host = slot.index as usize % hosts.len();
    hosts[..host]
        .iter()
        .map(|h| h.sources.map_or(0, |s| s.len() as usize))
        .sum()
}

/// `--remote` for one host: the template split into words on whitespace, `{host}`
/// replaced in each. The worker's program and arguments follow these words.
pub fn remote_prefix(template: &str, host: &str) -> Result<Vec<String>, String> {
    let words: Vec<String> = template
        .split_whitespace()
        .map(|w| w.replace(HOST_PLACEHOLDER, host))
        .collect();
    if words.is_empty() {
        return Err("--remote is empty: want a command prefix such as 'ssh {host}'".into());
    }
    if !template.contains(HOST_PLACEHOLDER) {
        return Err(format!(
            "--remote {template:?} does not say where: it needs {HOST_PLACEHOLDER}"
        ));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str) -> Vec<LoadHost> {
        s.split(',').map(|h| h.parse().unwrap()).collect()
    }

    #[test]
    fn hosts_parse_with_and_without_sources() {
        let h: LoadHost = "c1=10.203.101.1-10.203.101.4".parse().unwrap();
        assert_eq!(h.name, "c1");
        assert_eq!(h.sources.unwrap().len(), 4);
        assert_eq!(h.to_string(), "c1=10.203.101.1-10.203.101.4");
        let bare: LoadHost = "load@host-2.example".parse().unwrap();
        assert_eq!(
            (bare.name.as_str(), bare.sources),
            ("load@host-2.example", None)
        );
        for bad in [
            "",
            "=10.0.0.1",
            "a b",
            "c1;rm",
            "c1=",
            "c1=10.0.0.9-10.0.0.1",
            "$(x)",
        ] {
            assert!(bad.parse::<LoadHost>().is_err(), "{bad}");
        }
    }

    #[test]
    fn workers_are_dealt_to_hosts_in_turn_each_with_its_own_sources() {
        let h = hosts("a=10.0.1.1-10.0.1.4,b=10.0.2.1-10.0.2.2,c");
        let slot = |index| WorkerSlot { index, count: 6 };
        let names: Vec<&str> = (0..6).map(|k| host_of(&h, slot(k)).name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "a", "b", "c"]);
        let offsets: Vec<usize> = (0..6).map(|k| source_offset(&h, slot(k))).collect();
        assert_eq!(offsets, [0, 4, 6, 0, 4, 6]);
        assert_eq!(process_count(1, 3), 3);
        assert_eq!(process_count(3, 3), 3);
        assert_eq!(process_count(4, 3), 6);
        assert_eq!(process_count(51, 2), 52);
    }

    #[test]
    fn the_remote_prefix_names_the_host() {
        assert_eq!(
            remote_prefix("ip netns exec wsr-{host}", "c2").unwrap(),
            ["ip", "netns", "exec", "wsr-c2"]
        );
        assert_eq!(
            remote_prefix(" ssh  -T {host} ", "load1").unwrap(),
            ["ssh", "-T", "load1"]
        );
        assert!(remote_prefix("", "c1").is_err());
        assert!(remote_prefix("ssh load1", "c1")
            .unwrap_err()
            .contains("{host}"));
    }
}
