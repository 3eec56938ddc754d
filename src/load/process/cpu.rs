//! CPU time of a process and all its descendants, read from `/proc`: what
//! `--server-pid` divides by the operations of the measured period (and what the load
//! generator's own figure is read from).
//!
//! A process's `stat` (fields 14–17) holds its own user and system time and that of the
//! children it has reaped; a live child's time is in its own `stat` only, so the tree is
//! walked through `/proc/PID/task/*/children` (or, on kernels without that file, by
//! scanning `/proc` for `PPid`). A `serve --workers N` supervisor's workers are counted
//! this way, and a worker that exits during the measured period moves from "live child"
//! to the parent's `cutime` once reaped: counted either way. Resolution is one clock
//! tick (10 ms at the usual USER_HZ of 100), which a period of seconds makes negligible.

use std::fs;
use std::io;
use std::time::Duration;

/// CPU time of a process tree at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeCpu {
    /// utime + stime (+ reaped children's) summed over the tree.
    pub total: Duration,
    /// Processes in the tree now (the root included).
    pub processes: u32,
}

/// The CPU time used so far by `pid` and every live descendant of it.
pub fn tree_cpu(pid: u32) -> io::Result<TreeCpu> {
    let hz = ticks_per_sec();
    let mut ticks = stat_ticks(pid)?;
    let mut processes = 1;
    let mut stack = children(pid);
    while let Some(child) = stack.pop() {
        // A child that ended since it was listed is in its parent's cutime once reaped;
        // until then its stat is still readable (a zombie keeps its times).
        if let Ok(t) = stat_ticks(child) {
            ticks += t;
            processes += 1;
            stack.extend(children(child));
        }
    }
    Ok(TreeCpu {
        total: Duration::from_micros(ticks.saturating_mul(1_000_000) / hz),
        processes,
    })
}

/// The kernel's clock ticks per second for `/proc` times (USER_HZ).
fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf takes a constant name and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as u64
    } else {
        100
    }
}

/// The fields of `/proc/PID/stat` after the command name (field 3, the state, first):
/// the name is in parentheses and may itself hold spaces and parentheses.
fn stat_fields(pid: u32) -> io::Result<Vec<u64>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no ')' in stat"))?;
    // The state is a letter: number it 0, the rest parse as numbers (signed ones, like
    // cutime on some kernels, never negative in practice).
    Ok(rest
        .split_whitespace()
        .map(|f| f.parse::<i64>().map_or(0, |v| v.max(0) as u64))
        .collect())
}

/// utime + stime + cutime + cstime (fields 14–17) of `pid`, in clock ticks.
fn stat_ticks(pid: u32) -> io::Result<u64> {
    let f = stat_fields(pid)?;
    // Field n of stat is index n - 3 here (field 3, the state, is index 0).
    match f.get(11..15) {
        Some(times) => Ok(times.iter().sum()),
        None => Err(io::Error::new(io::ErrorKind::InvalidData, "short stat")),
    }
}

/// The live children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    match fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => {
            let mut kids: Vec<u32> = Vec::new();
            let mut found = false;
            for task in tasks.flatten() {
                if let Ok(list) = fs::read_to_string(task.path().join("children")) {
                    found = true;
                    kids.extend(
                        list.split_whitespace()
                            .filter_map(|p| p.parse::<u32>().ok()),
                    );
                }
            }
            if found {
                kids
            } else {
                children_by_scan(pid)
            }
        }
        Err(_) => Vec::new(),
    }
}

/// The children of `pid` found by reading every process's parent (field 4 of stat):
/// for kernels built without `/proc/PID/task/TID/children`.
fn children_by_scan(pid: u32) -> Vec<u32> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat_fields(p).is_ok_and(|f| f.get(1) == Some(&u64::from(pid))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_busy_child_counts_towards_its_parents_tree() {
        let me = std::process::id();
        let before = tree_cpu(me).unwrap();
        assert!(before.processes >= 1);
        // A child that spins for a while: while it lives, the tree holds it.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5",
            ])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut seen = None;
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(50));
            let own = tree_cpu(pid).unwrap().total;
            if own >= Duration::from_millis(50) {
                seen = Some(own);
                break;
            }
        }
        let during = tree_cpu(me).unwrap();
        let scanned = children_by_scan(me);
        let _ = child.kill();
        let _ = child.wait();
        let own = seen.expect("the child used CPU time");
        assert!(during.processes >= 2, "{during:?}");
        assert!(
            during.total >= before.total + own,
            "{before:?} {during:?} {own:?}"
        );
        assert!(scanned.contains(&pid), "{scanned:?} lacks {pid}");
    }

    #[test]
    fn a_missing_process_is_an_error() {
        assert!(tree_cpu(u32::MAX - 1).is_err());
    }
}
