//! Host limits on concurrent TCP connections: read them, raise RLIMIT_NOFILE, report.
//!
//! One job: tell what bounds how many connections this host can hold (descriptors per
//! process, open files system-wide, memory) and what bounds the client side (ephemeral
//! ports per address pair) — the server's port is never the limit.
//! Invariants: no limit is ever lowered; every /proc read degrades to `None`, never a
//! panic; `probe_nofile` closes every descriptor it opened.
//!
//! What a run of N connections needs here (processes, source addresses) is
//! [`sizing`]'s, from the limits read here; `text` writes the report for a reader.

mod figures;
pub mod sizing;
mod text;

use serde::Serialize;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Kernel memory per idle established TCP socket (socket, file, inode, dentry, epoll
/// item, TCP state): the slab growth per socket that `scripts/scale.sh 1000000` measured
/// on this kernel (6.18, loopback, both ends counted). Outside our control, but it
/// dominates at scale.
pub const KERNEL_BYTES_PER_SOCKET: u64 = 5_125;
/// User-space bytes per idle connection in the server: RSS growth per connection that
/// `scripts/scale.sh 1000000` measured (77.8 B), rounded up; the budget is 96 B.
pub const USER_BYTES_PER_CONNECTION: u64 = 78;
/// Linux's default `fs.nr_open`, used only when /proc/sys cannot be read.
const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// RLIMIT_NOFILE before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct NofileLimit {
    /// Soft limit found on entry.
    pub soft_before: u64,
    /// Soft limit now: the most descriptors this process may hold.
    pub soft: u64,
    /// Hard limit: the ceiling an unprivileged process may raise its soft limit to.
    pub hard: u64,
}

/// Current RLIMIT_NOFILE as `(soft, hard)`; `libc::RLIM_INFINITY` means unlimited.
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into `lim`, a valid rlimit that outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, as Go's runtime does since 1.19, and
/// returns what the kernel holds afterwards. Never lowers the soft limit.
pub fn raise_nofile() -> io::Result<NofileLimit> {
    let (soft_before, hard) = nofile()?;
    // The kernel never grows a descriptor table past fs.nr_open, so with an unlimited
    // hard limit the soft limit goes to nr_open; the hard limit itself is left alone.
    let target = if hard == libc::RLIM_INFINITY {
        sysctl_u64("fs.nr_open").unwrap_or(NR_OPEN_DEFAULT)
    } else {
        hard
    };
    if soft_before < target {
        let lim = libc::rlimit {
            rlim_cur: target,
            rlim_max: hard,
        };
        // SAFETY: setrlimit only reads `lim`, a valid rlimit that outlives the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let (soft, hard) = nofile()?;
    Ok(NofileLimit {
        soft_before,
        soft,
        hard,
    })
}

/// Measures the per-process descriptor limit for real: duplicates one `/dev/null`
/// descriptor until `EMFILE`, then closes every duplicate. Returns the highest descriptor
/// number obtained plus one. While it runs the process has no free descriptor, so call
/// it only while no other thread opens files.
pub fn probe_nofile() -> io::Result<u64> {
    let null = File::open("/dev/null")?;
    let mut highest = null.as_raw_fd();
    // dup shares one open file description, so the probe spends descriptor-table slots
    // only, not system-wide open files. Dropping `held` closes every duplicate, on the
    // error path too.
    let mut held: Vec<OwnedFd> = Vec::new();
    loop {
        match null.as_fd().try_clone_to_owned() {
            Ok(fd) => {
                highest = highest.max(fd.as_raw_fd());
                held.push(fd);
            }
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => return Err(e),
        }
    }
    // The kernel hands out the lowest free number, so at EMFILE every number below the
    // limit is taken and the highest one we got is the limit minus one.
    Ok(u64::from(highest.unsigned_abs()) + 1)
}

/// `net.ipv4.ip_local_port_range`: the ports a client draws from, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    /// The first port.
    pub low: u64,
    /// The last port.
    pub high: u64,
    /// `high - low + 1`: connections per (source address → server address:port) pair.
    pub count: u64,
}

impl PortRange {
    /// Linux's default range, for when /proc cannot be read.
    pub const LINUX_DEFAULT: PortRange = PortRange {
        low: 32_768,
        high: 60_999,
        count: 28_232,
    };
}

/// The ephemeral port range (the one place it is read: `limits`, `load` and, through
/// `limits --json`, scripts/scale.sh all take it from here).
pub fn port_range() -> Option<PortRange> {
    match sysctl("net.ipv4.ip_local_port_range").as_deref() {
        Some(&[low, high]) if high >= low => Some(PortRange {
            low,
            high,
            count: high - low + 1,
        }),
        _ => None,
    }
}

/// `net.ipv4.tcp_mem` in pages: below `min` no pressure; above `max` allocations fail.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TcpMem {
    /// Pages below which TCP memory is under no pressure.
    pub min: u64,
    /// Pages from which the kernel moderates buffers.
    pub pressure: u64,
    /// Pages at which socket allocations fail.
    pub max: u64,
}

/// The limit that caps the total first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// RLIMIT_NOFILE soft limit, per process (times the worker count).
    Nofile,
    /// `fs.file-max`: open files across all processes.
    FileMax,
    /// MemAvailable divided by the bytes each connection costs.
    Memory,
    /// `fs.epoll.max_user_watches`: sockets registered with epoll, per user.
    EpollWatches,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Nofile => "RLIMIT_NOFILE (per process)",
            Limit::FileMax => "fs.file-max (system-wide open files)",
            Limit::Memory => "memory (MemAvailable)",
            Limit::EpollWatches => "fs.epoll.max_user_watches (per user)",
        })
    }
}

/// How many server-side connections fit, and what caps them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Capacity {
    /// Server worker processes the total assumes.
    pub workers: u32,
    /// Soft RLIMIT_NOFILE minus [`sizing::FD_RESERVE`].
    pub per_process: Option<u64>,
    /// `fs.file-max` minus the files allocated now.
    pub file_max_free: Option<u64>,
    /// MemAvailable / bytes per connection (server side only).
    pub by_memory: Option<u64>,
    /// The least of `workers × per_process`, `file_max_free` and `by_memory`.
    pub total: Option<u64>,
    /// Which limit caps `total`.
    pub binds_first: Option<Limit>,
}

/// Everything that bounds concurrent TCP connections here; `None` where /proc had no answer.
#[derive(Debug, Serialize)]
pub struct Report {
    /// RLIMIT_NOFILE after [`raise_nofile`].
    pub nofile: Option<NofileLimit>,
    /// [`probe_nofile`]'s measurement, when asked for.
    pub nofile_probed: Option<u64>,
    /// `fs.nr_open`: the most RLIMIT_NOFILE can be raised to.
    pub nr_open: Option<u64>,
    /// `fs.file-max`: open files across all processes.
    pub file_max: Option<u64>,
    /// Open files allocated system-wide now (first field of `fs.file-nr`).
    pub file_nr: Option<u64>,
    /// The ephemeral ports a client draws from.
    pub port_range: Option<PortRange>,
    /// `net.core.somaxconn`: the cap on a listener's accept queue.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections queued.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `fs.epoll.max_user_watches`: every socket a reactor watches counts, for all the
    /// user's processes together (the server's and a local load generator's alike).
    pub epoll_max_user_watches: Option<u64>,
    /// MemTotal.
    pub mem_total_bytes: Option<u64>,
    /// MemAvailable: what new connections can take.
    pub mem_available_bytes: Option<u64>,
    /// `net.ipv4.tcp_mem`.
    pub tcp_mem_pages: Option<TcpMem>,
    /// The page size, for `tcp_mem_pages`.
    pub page_size: Option<u64>,
    /// This server's own memory per idle connection ([`USER_BYTES_PER_CONNECTION`]).
    pub user_bytes_per_connection: u64,
    /// The kernel's memory per idle socket ([`KERNEL_BYTES_PER_SOCKET`]).
    pub kernel_bytes_per_connection: u64,
    /// How many connections fit, and what caps them.
    pub capacity: Capacity,
    /// Client source addresses needed to open `capacity.total` connections to one port
    /// with none of them more than a quarter full ([`sizing::per_source_limit`]).
    pub client_sources_needed: Option<u64>,
    /// What a run of `--connections N` needs here; only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizing: Option<sizing::Sizing>,
}

/// Builds the report for a server of `workers` processes (default: as many as a run of
/// `connections` needs, else 1), with the sizing of that run if `connections` is given.
/// Raises RLIMIT_NOFILE first, as `serve` does at start-up, so the figures are what a
/// server process gets; with `probe`, also measures the limit with [`probe_nofile`].
pub fn report(workers: Option<u32>, connections: Option<u64>, probe: bool) -> Report {
    let nofile = raise_nofile()
        .or_else(|e| {
            log::warn!("cannot raise RLIMIT_NOFILE: {e}");
            nofile().map(|(soft, hard)| NofileLimit {
                soft_before: soft,
                soft,
                hard,
            })
        })
        .ok();
    let nofile_probed = probe
        .then(|| probe_nofile().map_err(|e| log::warn!("descriptor probe failed: {e}")))
        .and_then(Result::ok);
    let nr_open = sysctl_u64("fs.nr_open");
    let file_max = sysctl_u64("fs.file-max");
    let file_nr = sysctl_u64("fs.file-nr");
    let port_range = port_range();
    let tcp_mem_pages = match sysctl("net.ipv4.tcp_mem").as_deref() {
        Some(&[min, pressure, max]) => Some(TcpMem { min, pressure, max }),
        _ => None,
    };
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_available_bytes = meminfo_bytes(&meminfo, "MemAvailable");
    let per_conn = USER_BYTES_PER_CONNECTION + KERNEL_BYTES_PER_SOCKET;
    // An unlimited soft limit still stops at fs.nr_open.
    let soft = nofile.map(|n| n.soft.min(nr_open.unwrap_or(NR_OPEN_DEFAULT)));
    let ports = port_range.unwrap_or(PortRange::LINUX_DEFAULT).count;
    let sizing = connections
        .zip(soft)
        .map(|(n, soft)| sizing::plan(n, soft, ports));
    let workers = workers
        .or(sizing.as_ref().map(|s| s.server_workers))
        .unwrap_or(1);
    let capacity = capacity(
        workers,
        soft.map(|s| s.saturating_sub(sizing::FD_RESERVE)),
        file_max.map(|m| m.saturating_sub(file_nr.unwrap_or(0))),
        mem_available_bytes.map(|m| m / per_conn),
        sysctl_u64("fs.epoll.max_user_watches"),
    );
    Report {
        nofile,
        nofile_probed,
        nr_open,
        file_max,
        file_nr,
        port_range,
        somaxconn: sysctl_u64("net.core.somaxconn"),
        tcp_max_syn_backlog: sysctl_u64("net.ipv4.tcp_max_syn_backlog"),
        epoll_max_user_watches: sysctl_u64("fs.epoll.max_user_watches"),
        mem_total_bytes: meminfo_bytes(&meminfo, "MemTotal"),
        mem_available_bytes,
        tcp_mem_pages,
        page_size: page_size(),
        user_bytes_per_connection: USER_BYTES_PER_CONNECTION,
        kernel_bytes_per_connection: KERNEL_BYTES_PER_SOCKET,
        client_sources_needed: capacity
            .total
            .zip(port_range)
            .and_then(|(t, r)| sources_needed(t, r.count)),
        capacity,
        sizing,
    }
}

/// Source addresses a client needs to open `connections` to one server address:port,
/// given `ports_per_pair` ephemeral ports per address, filling each to at most a quarter
/// (as [`sizing`] does); `None` when there are no ports.
pub fn sources_needed(connections: u64, ports_per_pair: u64) -> Option<u64> {
    (ports_per_pair > 0).then(|| connections.div_ceil(sizing::per_source_limit(ports_per_pair)))
}

fn capacity(
    workers: u32,
    per_process: Option<u64>,
    file_max_free: Option<u64>,
    by_memory: Option<u64>,
    epoll_watches: Option<u64>,
) -> Capacity {
    let workers = workers.max(1);
    let all_processes = per_process.map(|p| p.saturating_mul(u64::from(workers)));
    // min_by_key keeps the first of equal minima: on a tie, name the per-process limit.
    let least = [
        (Limit::Nofile, all_processes),
        (Limit::FileMax, file_max_free),
        (Limit::Memory, by_memory),
        (Limit::EpollWatches, epoll_watches),
    ]
    .into_iter()
    .filter_map(|(limit, n)| Some((n?, limit)))
    .min_by_key(|&(n, _)| n);
    Capacity {
        workers,
        per_process,
        file_max_free,
        by_memory,
        total: least.map(|(n, _)| n),
        binds_first: least.map(|(_, limit)| limit),
    }
}

/// Every number in a /proc/sys file, by dotted sysctl name; `None` if missing or not numeric.
fn sysctl(name: &str) -> Option<Vec<u64>> {
    let text = fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).ok()?;
    text.split_whitespace().map(|w| w.parse().ok()).collect()
}

fn sysctl_u64(name: &str) -> Option<u64> {
    sysctl(name)?.first().copied()
}

/// A `/proc/meminfo` field (given there in KiB) in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()?
            .checked_mul(1024)
    })
}

/// The machine's memory (`MemTotal`), in bytes.
pub fn mem_total_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_bytes(&meminfo, "MemTotal")
}

/// The memory page size in bytes (for /proc figures given in pages).
pub fn page_size() -> Option<u64> {
    // SAFETY: sysconf only reads a configuration value; it touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::figures::{count, size};
    use super::*;
    use std::sync::{Mutex, MutexGuard};

    /// The raise test changes RLIMIT_NOFILE: tests that read the limit run alone under
    /// this lock. (The probe, which fills the descriptor table, is tested through the
    /// CLI in its own process: tests/limits_cli.rs.)
    static FD_TABLE: Mutex<()> = Mutex::new(());

    fn lock() -> MutexGuard<'static, ()> {
        FD_TABLE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The numbers on the first line of `path` that starts with `prefix`, read directly.
    fn numbers(path: &str, prefix: &str) -> Vec<u64> {
        let text = fs::read_to_string(path).unwrap();
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    }

    #[test]
    fn raise_sets_soft_to_hard_and_never_lowers() {
        let _guard = lock();
        let (_, hard) = nofile().unwrap();
        // Lower the soft limit first, so the raise runs even where soft already equals hard.
        let lowered = (hard / 2).clamp(256.min(hard), hard);
        let lim = libc::rlimit {
            rlim_cur: lowered,
            rlim_max: hard,
        };
        // SAFETY: setrlimit only reads `lim`, a valid rlimit that outlives the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let raised = raise_nofile().unwrap();
        assert_eq!(raised.soft_before, lowered);
        assert_eq!(raised.soft, raised.hard);
        assert!(raised.soft >= raised.soft_before);
        assert_eq!(nofile().unwrap(), (raised.soft, raised.hard));
        let again = raise_nofile().unwrap();
        assert_eq!((again.soft_before, again.soft), (raised.soft, raised.soft));
    }

    #[test]
    fn report_matches_proc() {
        let _guard = lock();
        let r = report(Some(3), None, false);
        let sys = |name: &str| numbers(&format!("/proc/sys/{name}"), "");
        let n = r.nofile.unwrap();
        let limits = numbers("/proc/self/limits", "Max open files");
        assert_eq!(vec![n.soft, n.hard], limits);
        assert_eq!(r.nofile_probed, None, "not asked for");
        assert_eq!(r.nr_open, Some(sys("fs/nr_open")[0]));
        assert_eq!(r.file_max, Some(sys("fs/file-max")[0]));
        assert!(r.file_nr.is_some_and(|nr| nr > 0 && Some(nr) <= r.file_max));
        assert_eq!(r.somaxconn, Some(sys("net/core/somaxconn")[0]));
        assert_eq!(
            r.epoll_max_user_watches,
            Some(sys("fs/epoll/max_user_watches")[0])
        );
        assert_eq!(
            r.tcp_max_syn_backlog,
            Some(sys("net/ipv4/tcp_max_syn_backlog")[0])
        );
        let (ports, range) = (sys("net/ipv4/ip_local_port_range"), r.port_range.unwrap());
        assert_eq!(vec![range.low, range.high], ports);
        assert_eq!(range.count, ports[1] - ports[0] + 1);
        let t = r.tcp_mem_pages.unwrap();
        assert_eq!(vec![t.min, t.pressure, t.max], sys("net/ipv4/tcp_mem"));
        let mem_total = numbers("/proc/meminfo", "MemTotal:")[0] * 1024;
        assert_eq!(r.mem_total_bytes, Some(mem_total));
        assert!(r.mem_available_bytes.is_some_and(|a| a <= mem_total));
        let per_process = n.soft - sizing::FD_RESERVE;
        assert_eq!(r.capacity.per_process, Some(per_process));
        let total = r.capacity.total.unwrap();
        assert!(total <= 3 * per_process);
        assert_eq!(r.client_sources_needed, sources_needed(total, range.count));
    }

    #[test]
    fn json_has_the_expected_keys() {
        let _guard = lock();
        let json = serde_json::to_value(report(Some(2), None, false)).unwrap();
        let numbers = "/nofile/soft_before /nofile/soft /nofile/hard /nr_open
            /file_max /file_nr /port_range/low /port_range/high /port_range/count /somaxconn
            /tcp_max_syn_backlog /epoll_max_user_watches /mem_total_bytes /mem_available_bytes /tcp_mem_pages/min
            /tcp_mem_pages/pressure /tcp_mem_pages/max /page_size /user_bytes_per_connection
            /kernel_bytes_per_connection /capacity/workers /capacity/per_process
            /capacity/file_max_free /capacity/by_memory /capacity/total /client_sources_needed";
        for pointer in numbers.split_whitespace() {
            let value = json.pointer(pointer);
            assert!(value.is_some_and(|v| v.is_u64()), "{pointer}: {value:?}");
        }
        assert!(json["capacity"]["binds_first"].is_string());
    }

    #[test]
    fn display_has_every_limit_and_fits_80_columns() {
        let _guard = lock();
        let text = report(Some(4), None, false).to_string();
        println!("{text}");
        let needles = "RLIMIT_NOFILE soft|RLIMIT_NOFILE hard|probed (--probe)|fs.nr_open|\
            fs.file-max|fs.file-nr|net.core.somaxconn|MemAvailable|ip_local_port_range|\
            ports per pair|65,535 port limit|with 4 workers|binds first: ";
        for needle in needles.split('|') {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("unknown"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line:?}");
        }
    }

    #[test]
    fn capacity_takes_the_least_limit() {
        let least = |c: Capacity| (c.total, c.binds_first);
        let c = capacity(4, Some(19_984), Some(2_000_000), Some(6_000_000), None);
        assert_eq!(least(c), (Some(79_936), Some(Limit::Nofile)));
        let c = capacity(200, Some(19_984), Some(2_000_000), Some(6_000_000), None);
        assert_eq!(least(c), (Some(2_000_000), Some(Limit::FileMax)));
        let c = capacity(200, Some(19_984), Some(9_000_000), None, Some(1_000_000));
        assert_eq!(least(c), (Some(1_000_000), Some(Limit::EpollWatches)));
        let c = capacity(0, Some(19_984), None, Some(10_000), None);
        assert_eq!(
            (c.workers, least(c)),
            (1, (Some(10_000), Some(Limit::Memory)))
        );
        assert_eq!(least(capacity(1, None, None, None, None)), (None, None));
    }

    #[test]
    fn missing_or_garbled_proc_data_is_none() {
        assert_eq!(sysctl("no.such.sysctl"), None);
        assert_eq!(meminfo_bytes("", "MemTotal"), None);
        assert_eq!(meminfo_bytes("MemTotal: lots kB", "MemTotal"), None);
        let meminfo = "MemTotalX: 5 kB\nMemTotal: 2 kB";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(2048));
        assert_eq!(sources_needed(100_000, 28_232), Some(15));
        assert_eq!(sources_needed(7_058, 28_232), Some(1));
        assert_eq!(sources_needed(28_232, 28_232), Some(4));
        assert_eq!(sources_needed(1, 0), None);
        assert_eq!(count(Some(1_048_576)), "1,048,576");
        assert_eq!(count(Some(999)), "999");
        assert_eq!(count(Some(i64::MAX as u64)), "unlimited");
        assert_eq!(size(Some(3_885)), "3.8 KiB");
    }
}
