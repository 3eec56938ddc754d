#!/usr/bin/env python3
"""Samples, once a wall-clock second, what the server and the kernel spend while
scripts/scale.sh runs, and appends it to a JSON-lines file.

    scale_sample.py SERVER_PID LOAD_PID OUT.jsonl

One line per second t (the Unix second, as in `wsreactor load --timeline`):
server_rss_bytes (VmRSS of the supervisor and every worker, at the second's end),
server_cpu and load_cpu (cores the server's / the load generator's processes used
within the second: utime + stime deltas from /proc/PID/stat), host_cpu (cores busy
on the whole host, /proc/stat: softirq work, and other programs, that the two do not
account for), other_cpu and other_top (cores every other process used, and the three
busiest by command name), tcp_mem_bytes
(/proc/net/sockstat TCP `mem`, socket buffer pages), tcp_inuse (TCP sockets, both
ends), slab_bytes (/proc/meminfo Slab: socket structures live there).

Why Python and one process: a bash loop would fork awk per process per second, which
at a million connections (about 110 processes) costs more CPU than it measures. Stops
when the server is gone or on SIGTERM; each line is flushed as written.
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


def family(pid):
    """The process and its descendants (the supervisor's workers, the load workers)."""
    pids, todo = [], [pid]
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
    """utime + stime in clock ticks, or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: fields count from after its ')'.
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


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


def slab_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
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
    """CPU used by a process tree between two calls, in ticks. A process's ticks
    count from its first sighting (those before are the previous second's, unseen)."""

    def __init__(self, root):
        self.root, self.seen = root, {}

    def delta(self):
        total, now = 0, {}
        for pid in family(self.root):
            ticks = cpu_ticks(pid)
            if ticks is None:
                continue
            now[pid] = ticks
            total += ticks - self.seen.get(pid, ticks)
        self.seen = now
        return total


def main():
    server, load, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server_cpu, load_cpu = Cpu(server), Cpu(load)
    server_cpu.delta()
    load_cpu.delta()
    last = time.monotonic()
    host = host_ticks()
    others = Others()
    with open(path, "a") as out:
        while os.path.exists(f"/proc/{server}"):
            # Wake just after the second turns: what was measured belongs to the one
            # that ended. A late wake-up (busy CPUs) stretches the interval, so CPU is
            # divided by the interval measured, not by one second.
            time.sleep(1.0 - time.time() % 1.0 + 0.005)
            t = int(time.time()) - 1
            now = time.monotonic()
            secs, last = max(now - last, 0.001), now
            tcp = sockstat_tcp()
            (busy, total), (busy0, total0) = host_ticks(), host
            host = (busy, total)
            row = {
                "t": t,
                "server_rss_bytes": sum(rss_bytes(p) for p in family(server)),
                "server_cpu": round(server_cpu.delta() / TICKS / secs, 3),
                "load_cpu": round(load_cpu.delta() / TICKS / secs, 3),
                # Every CPU of the host, busy (softirq and other programs included).
                "host_cpu": round((busy - busy0) / max(total - total0, 1) * CPUS, 3),
                "tcp_mem_bytes": tcp.get("mem", 0) * PAGE,
                "tcp_inuse": tcp.get("inuse", 0),
                "slab_bytes": slab_bytes(),
            }
            ours = set(family(server)) | set(family(load)) | {os.getpid()}
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
