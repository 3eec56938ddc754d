#!/usr/bin/env python3
"""Samples, once a wall-clock second, what the server and the kernel spend while
scripts/scale.sh runs, and appends it to a JSON-lines file.

    scale_sample.py SERVER_PID[,SERVER_PID...] LOAD_PID_FILE OUT.jsonl

Started before the load generator: its pid is read from LOAD_PID_FILE once the file
holds it. The server's CPU counts from the sampler's start (its own start-up is not
the run's); the load's from each of its processes' birth (all of it is the run's), so
nothing the run spent before the pid was known is lost.

One line per second t (the Unix second, as in `wsreactor load --timeline`):
server_rss_bytes (VmRSS of the supervisor and every worker, or of every server process
given and its descendants, at the second's end),
server_cpu and load_cpu (cores the server's / the load generator's processes used
within the second: utime + stime deltas from /proc/PID/stat), the same split into
server_cpu_user, server_cpu_system, load_cpu_user and load_cpu_system (utime and
stime apart), server_user_cpu_secs, server_system_cpu_secs, load_user_cpu_secs and
load_system_cpu_secs (CPU seconds since sampling began, at the second's end), server_fds (descriptors the server's processes hold), server_fds_max and
server_fds_limit (the most any one of them holds, and that one's RLIMIT_NOFILE soft
limit: how near the descriptor limit the server is), mem_available_bytes
(/proc/meminfo MemAvailable), host_cpu (cores busy
on the whole host, /proc/stat: softirq work, and other programs, that the two do not
account for), other_cpu and other_top (cores every other process used, and the three
busiest by command name), tcp_mem_bytes
(/proc/net/sockstat TCP `mem`, socket buffer pages), tcp_inuse (TCP sockets, both
ends), slab_bytes (/proc/meminfo Slab: socket structures live there).

Why Python and one process: a bash loop would fork awk per process per second, which
at a million connections (about 110 processes) costs more CPU than it measures. Stops
when every server process is gone or on SIGTERM; each line is flushed as written.
Stdlib only.
"""

import json
import os
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CPUS = os.cpu_count() or 1


def family(*roots):
    """The processes and their descendants (the supervisor's workers, the load workers)."""
    pids, todo = [], list(roots)
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_ticks(pid):
    """(utime, stime) in clock ticks, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: fields count from after its ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def fd_count(pid):
    """Descriptors open in the process: the size Linux 6.2+ reports for /proc/PID/fd
    (no walk of the table: at 20,000 descriptors a listing each second would cost more
    than the server it watches), else a listing."""
    try:
        size = os.stat(f"/proc/{pid}/fd").st_size
        return size if size > 0 else len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def nofile_soft(pid):
    """The process's RLIMIT_NOFILE soft limit, from /proc/PID/limits."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, IndexError, ValueError):
        pass
    return None


class Fds:
    """Descriptors of a process tree: the sum, and the fullest process against its own
    limit (read once per process: a limit does not change under a running server)."""

    def __init__(self, roots):
        self.roots, self.limits = roots, {}

    def sample(self):
        total, fullest = 0, None
        for pid in family(*self.roots):
            n = fd_count(pid)
            if n is None:
                continue
            total += n
            if pid not in self.limits:
                self.limits[pid] = nofile_soft(pid)
            if fullest is None or n > fullest[0]:
                fullest = (n, self.limits[pid])
        return {"server_fds": total,
                "server_fds_max": fullest[0] if fullest else None,
                "server_fds_limit": fullest[1] if fullest else None}


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def host_ticks():
    """(busy, all) clock ticks of every CPU since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]) - idle, sum(v[:8])


def sockstat_tcp():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                v = line.split()[1:]
                return dict(zip(v[::2], map(int, v[1::2])))
    return {}


def meminfo(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def all_ticks():
    """{pid: (command name, utime + stime)} of every process on the host."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
            fields = tail.split()
            out[int(name)] = (head.split("(", 1)[1], int(fields[11]) + int(fields[12]))
        except (OSError, IndexError, ValueError):
            pass
    return out


class Others:
    """CPU of every process that is not the run's, by command name: what else this
    host was doing (other programs, kernel threads doing deferred network work)."""

    def __init__(self):
        self.seen = all_ticks()

    def delta(self, ours):
        now = all_ticks()
        by_name = {}
        for pid, (name, ticks) in now.items():
            if pid in ours:
                continue
            d = ticks - self.seen.get(pid, (name, ticks))[1]
            if d > 0:
                by_name[name] = by_name.get(name, 0) + d
        self.seen = now
        return by_name


class Cpu:
    """CPU used by a process tree between two calls, in ticks, (user, system). A
    process's ticks count from its first sighting (those before are the previous
    second's, unseen), or with `from_birth` from its start."""

    def __init__(self, roots, from_birth=False):
        self.roots, self.seen, self.from_birth = roots, {}, from_birth

    def delta(self):
        user = system = 0
        now = {}
        for pid in family(*self.roots):
            ticks = cpu_ticks(pid)
            if ticks is None:
                continue
            now[pid] = ticks
            u0, s0 = self.seen.get(pid, (0, 0) if self.from_birth else ticks)
            user, system = user + ticks[0] - u0, system + ticks[1] - s0
        self.seen = now
        return user, system


def load_pid(path):
    """[the load generator's pid] once the file says it, else []."""
    try:
        with open(path) as f:
            return [int(f.read())]
    except (OSError, ValueError):
        return []


def main():
    servers = [int(p) for p in sys.argv[1].split(",")]
    load_file, path = sys.argv[2], sys.argv[3]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server_cpu, load_cpu = Cpu(servers), Cpu([], from_birth=True)
    fds = Fds(servers)
    server_cpu.delta()
    last = time.monotonic()
    # CPU seconds since sampling began, each side, user and system: the figures per
    # handshake and per echo are differences of these (nothing lost to rounding, or to
    # the first partial second, which has no row of its own).
    spent = dict.fromkeys(("server_user", "server_system", "load_user", "load_system"), 0)
    host = host_ticks()
    others = Others()
    with open(path, "a") as out:
        while any(os.path.exists(f"/proc/{p}") for p in servers):
            # Wake just after the second turns: what was measured belongs to the one
            # that ended. A late wake-up (busy CPUs) stretches the interval, so CPU is
            # divided by the interval measured, not by one second.
            time.sleep(1.0 - time.time() % 1.0 + 0.005)
            if not load_cpu.roots:
                load_cpu.roots = load_pid(load_file)
            t = int(time.time()) - 1
            now = time.monotonic()
            secs, last = max(now - last, 0.001), now
            tcp = sockstat_tcp()
            (busy, total), (busy0, total0) = host_ticks(), host
            host = (busy, total)
            (su, ss), (lu, ls) = server_cpu.delta(), load_cpu.delta()

            def cores(ticks):
                return round(ticks / TICKS / secs, 3)

            for key, ticks in (("server_user", su), ("server_system", ss),
                               ("load_user", lu), ("load_system", ls)):
                spent[key] += ticks

            row = {
                "t": t,
                "server_rss_bytes": sum(rss_bytes(p) for p in family(*servers)),
                "server_cpu": cores(su + ss),
                "server_cpu_user": cores(su),
                "server_cpu_system": cores(ss),
                "load_cpu": cores(lu + ls),
                "load_cpu_user": cores(lu),
                "load_cpu_system": cores(ls),
                # Every CPU of the host, busy (softirq and other programs included).
                "host_cpu": round((busy - busy0) / max(total - total0, 1) * CPUS, 3),
                "tcp_mem_bytes": tcp.get("mem", 0) * PAGE,
                "tcp_inuse": tcp.get("inuse", 0),
                "slab_bytes": meminfo("Slab"),
                "mem_available_bytes": meminfo("MemAvailable"),
                **fds.sample(),
                **{f"{key}_cpu_secs": round(ticks / TICKS, 2) for key, ticks in spent.items()},
            }
            ours = set(family(*servers)) | set(family(*load_cpu.roots)) | {os.getpid()}
            other = others.delta(ours)
            if secs < 0.5:
                # The first, partial second: CPU is counted in 10 ms ticks, and a few
                # ticks over a few hundredths of a second read as several cores.
                continue
            row["other_cpu"] = round(sum(other.values()) / TICKS / secs, 3)
            # The three busiest other commands: who else wanted the CPUs.
            row["other_top"] = {k: round(v / TICKS / secs, 3)
                                for k, v in sorted(other.items(), key=lambda kv: -kv[1])[:3]}
            out.write(json.dumps(row) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
