#!/usr/bin/env python3
"""Builds the JSON report of one scripts/scale.sh run from its raw files, and prints
the summary.

    scale_result.py WORK REPORT.json

WORK is the run's work directory: run.json (what the shell measured, every value a
string: see FIELDS), limits.json (`wsreactor limits --json`), load.json (`wsreactor
load --json`), timeline.jsonl (the load's --timeline) and samples.jsonl
(scripts/scale_sample.py). The values come as data, not spliced into Python source.
Figures are computed here, not in the shell, so that a test
(tests/scripts/test_scale_result.py) can check each against a synthetic run.
Stdlib only.
"""

import json
import math
import os
import platform
import subprocess
import sys
import time

# run.json's keys and how each is read (the shell writes strings; "" is None).
FIELDS = {
    "command": str, "version": str, "addr": str, "server_name": str, "server_command": str,
    "started": float, "finished": float, "established_at": float, "stop_at": float,
    "n": int, "hold": int, "echo_every": int, "port": int, "workers": int, "page_size": int,
    "ss_established": int, "distinct_pairs": int, "source_count": int, "max_per_source": int,
    "rss_before": int, "rss_during": int, "load_rss_during": int,
    "slab_before_kib": int, "slab_during_kib": int, "tcp_mem_before_pages": int,
    "sockets_used": int, "tcp_buffer_server": int, "tcp_buffer_client": int,
    "load_status": int, "server_exit_status": int, "held_at_stop": int,
    "stop_kind": str, "server_log_tail": str, "deflate_window": int,
}

# Failures of the load generator that say the server refused, or did not answer in time.
REFUSALS = ("connect_refused", "reset_by_server")
TIMEOUTS = ("connect_timeout", "handshake_timeout")
LOAD_LIMITS = ("ports_exhausted", "fd_limit")
# A server process this close to its RLIMIT_NOFILE (soft) can accept no more: the
# listener, epoll and a log make up the difference.
FD_SLACK = 16
# Below this share of MemTotal available, memory is what ran out.
MEMORY_LOW = 0.05


def read_run(work):
    with open(os.path.join(work, "run.json")) as f:
        raw = json.load(f)
    run = {}
    for key, kind in FIELDS.items():
        v = raw.get(key, "")
        run[key] = kind(v) if v != "" else None
    return run


def lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def timeline_rows(timeline, samples, start):
    """One row per Unix second from the run's start: the load's timeline and the
    sampler's rows merged, with `elapsed` seconds since the start's whole second."""
    rows = {}
    for r in timeline:
        row = rows.setdefault(r["t"], {"t": r["t"]})
        for k in ("established", "pending", "handshakes", "verified", "echoes", "failed", "closed"):
            row[k] = r.get(k)
        for name, key in (("handshake", "handshake_us"), ("echo", "echo_rtt_us")):
            for q in ("p50", "p99"):
                row[f"{name}_{q}_us"] = (r.get(key) or {}).get(q)
    for r in samples:
        rows.setdefault(r["t"], {"t": r["t"]}).update(r)
    return [dict(rows[t], elapsed=t - start) for t in sorted(rows) if t >= start]


def per(core_secs, count):
    """CPU seconds spent over `count` operations, in µs each."""
    return round(core_secs * 1e6 / count, 1) if count and core_secs is not None else None


def spent(rows, first, last):
    """CPU seconds each side spent, user and system, over rows[first..last]: the
    sampler's running totals at the end of `last` less those at the end of the rows
    before `first` (none before: the sampling's start, 0)."""
    out = {}
    for side in ("server", "load"):
        for part in ("user", "system"):
            key = f"{side}_{part}_cpu_secs"
            end = rows[last].get(key)
            # The last sampled row before `first` (a second the sampler missed has none).
            begin = next((r[key] for r in reversed(rows[:first]) if r.get(key) is not None), 0)
            out[f"{side}_{part}"] = end - begin if end is not None and begin is not None else None
        u, sy = out[f"{side}_user"], out[f"{side}_system"]
        out[side] = u + sy if u is not None and sy is not None else None
    return out


def cpu_per(rows, first, last, count, unit):
    """Server and load CPU per operation (µs) over rows[first..last], total and
    user/system apart, and how busy the host was."""
    if first is None or last is None or last < first:
        cpu = dict.fromkeys(("server", "server_user", "server_system", "load", "load_user", "load_system"))
        span = []
    else:
        cpu, span = spent(rows, first, last), rows[first:last + 1]
    out = {f"{k}_us_per_{unit}": per(v, count) for k, v in cpu.items()}
    out["host_cores_busy_avg"] = (round(sum(r.get("host_cpu") or 0 for r in span) / len(span), 2)
                                  if span else None)
    out["seconds"] = len(span)
    return out


def ramp_cpu(rows, ramp_end, verified):
    """CPU from the start to every connection verified, each end, per connection: the
    handshakes (TCP, TLS if any, WebSocket) and the verification echo. By the sampler's
    whole seconds, up to the one the ramp ends in (a row covers [elapsed, elapsed + 1),
    so part of that second may be the hold's: meaningful for ramps of many seconds)."""
    sampled = [i for i, r in enumerate(rows) if "server_user_cpu_secs" in r]
    upto = [i for i in sampled if rows[i]["elapsed"] < ramp_end]
    out = cpu_per(rows, 0 if upto else None, upto[-1] if upto else None, verified, "connection")
    out["cpus"] = os.cpu_count()
    return out


def hold_cpu(rows, hold_start, hold_end):
    """CPU per echo over the seconds wholly inside the hold (every connection open,
    each echoing every --echo-every seconds): what holding and echoing costs."""
    held = [i for i, r in enumerate(rows)
            if r["elapsed"] >= hold_start and r["elapsed"] + 1 <= hold_end and "server_user_cpu_secs" in r]
    echoes = sum(rows[i].get("echoes") or 0 for i in held)
    out = cpu_per(rows, held[0] if held else None, held[-1] if held else None, echoes, "echo")
    out["echoes"] = echoes
    return out


def last_sample_with(samples, key):
    for r in reversed(samples):
        if r.get(key) is not None:
            return r
    return None


def stopped(run, load, timeline, samples, limits):
    """Where and why the run stopped short of every connection established, with the
    evidence; {"reason": "did_not_stop"} when it did not."""
    n = run["n"]
    failures = load.get("failures") or {}
    # The most the load held (the timeline can have dropped by the time the run stopped,
    # or not have said it yet).
    held = max([run["held_at_stop"] or 0] + [r.get("established") or 0 for r in timeline])
    if run["stop_kind"] == "server_exited":
        # Nothing connects once the server is gone: every connection the load ever
        # established was open when it exited (the run closes none before its hold ends).
        held = max(held, load.get("established") or 0)
    # What the sampler saw up to the stop (it goes on while the load closes what it has);
    # row t is read at the end of its second, t + 1.
    if run["stop_at"] is not None:
        samples = [r for r in samples if r["t"] + 1 <= run["stop_at"]]
    # The second the server held the most descriptors: where it stopped. Not the last
    # sample: a server that gives up drops its connections as it exits, which takes
    # seconds at 20,000 of them.
    fd = max((r for r in samples if r.get("server_fds_max") is not None),
             key=lambda r: r["server_fds_max"], default=None)
    evidence = {
        "established_when_stopped": held,
        "requested": n,
        "load_failures": failures,
    }
    if fd:
        evidence["sampled_at_elapsed"] = fd["t"] - math.floor(run["started"])
        evidence["server_fds"] = fd["server_fds"]
        # What the server held then, and its RSS: the memory side of where it stopped
        # (a server that exited has no RSS left to measure at the hold).
        then = next((r for r in timeline if r["t"] == fd["t"]), {})
        evidence["established_at_that_second"] = then.get("established")
        evidence["server_rss_bytes"] = fd.get("server_rss_bytes")
        evidence["server_fds_most_in_one_process"] = fd["server_fds_max"]
        evidence["that_process_nofile_soft"] = fd.get("server_fds_limit")
    mem = last_sample_with(samples, "mem_available_bytes")
    if mem:
        evidence["mem_available_bytes"] = mem["mem_available_bytes"]
        evidence["mem_total_bytes"] = limits.get("mem_total_bytes")
    if run["server_log_tail"]:
        evidence["server_log_tail"] = run["server_log_tail"]

    kind = run["stop_kind"] or "none"
    if kind == "none" and load.get("established", 0) >= n and (run["ss_established"] or 0) >= n:
        return {"reason": "did_not_stop",
                "detail": f"all {n:,} connections established and held: the run did not stop"}
    if kind == "server_exited":
        status = run["server_exit_status"]
        evidence["exit_status"] = status
        if status is not None and status > 128:
            evidence["killed_by_signal"] = status - 128
        evidence["connections_dropped"] = held
        detail = (f"the server exited (status {status}) holding {held:,} connections, "
                  f"all dropped with it")
        log = run["server_log_tail"] or ""
        if "os error 24" in log or "Too many open files" in log:
            detail += ": its log says a call failed with EMFILE (too many open files)"
            if fd and fd.get("server_fds_limit"):
                detail += f", at its RLIMIT_NOFILE of {fd['server_fds_limit']:,} descriptors"
        return {"reason": "server_exited", "detail": detail, "evidence": evidence}
    if fd and fd.get("server_fds_limit") and fd["server_fds_max"] >= fd["server_fds_limit"] - FD_SLACK:
        return {"reason": "descriptor_limit",
                "detail": (f"a server process has {fd['server_fds_max']:,} descriptors open of its "
                           f"RLIMIT_NOFILE {fd['server_fds_limit']:,}: it can accept no more"),
                "evidence": evidence}
    total = limits.get("mem_total_bytes")
    if mem and total and mem["mem_available_bytes"] < MEMORY_LOW * total:
        return {"reason": "memory",
                "detail": (f"{mem['mem_available_bytes'] / 2**20:,.0f} MiB available of "
                           f"{total / 2**20:,.0f} MiB"), "evidence": evidence}
    failed = sum(failures.values())

    def share(names):
        return sum(failures.get(k, 0) for k in names)

    for reason, names, what in (("load_limit", LOAD_LIMITS, "the load generator ran out of ports or descriptors"),
                                ("refusals", REFUSALS, "the server refused or reset connections"),
                                ("timeouts", TIMEOUTS, "connections were not answered in time")):
        count = share(names)
        if failed and 2 * count >= failed:
            return {"reason": reason,
                    "detail": f"{what}: {count:,} of {failed:,} failures ("
                              + ", ".join(f"{k} {failures[k]:,}" for k in names if failures.get(k)) + ")",
                    "evidence": evidence}
    if kind == "none":
        # The load held every one, but ss counted fewer on the port: the count came late
        # (the hold ended while a busy host ran it) or sockets went missing.
        evidence["established_on_port"] = run["ss_established"]
        return {"reason": "counted_short",
                "detail": (f"the load held all {n:,}, but ss counted {run['ss_established'] or 0:,} on the"
                           " port during the hold"), "evidence": evidence}
    return {"reason": "unknown",
            "detail": f"{held:,} of {n:,} established; no limit, exit or failure pattern explains it",
            "evidence": evidence}


def processes(limits, run, load):
    """How many processes each side ran, and why (RLIMIT_NOFILE caps each process)."""
    s = limits["sizing"]
    hard = limits["nofile"]["hard"]
    server = run["workers"]
    why = (f"RLIMIT_NOFILE hard {hard:,}: a process holds at most {s['per_process']:,} connections "
           f"({hard:,} descriptors less {s['fd_reserve']} reserved), so {s['connections']:,} "
           f"connections take {s['server_workers']} server workers (with "
           f"{s['server_headroom_percent']}% headroom, since SO_REUSEPORT spreads them unevenly) "
           f"and {s['load_procs']} load processes")
    if run["server_command"]:
        why += f"; this server ran as {server} process(es) (--server-procs)"
    return {"server": server, "load": load.get("processes"), "per_process": s["per_process"],
            "nofile_hard": hard, "why": why}


def mem_total_kib():
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1])


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def build(work):
    run = read_run(work)
    with open(os.path.join(work, "limits.json")) as f:
        limits = json.load(f)
    with open(os.path.join(work, "load.json")) as f:
        load = json.load(f)
    timeline = lines(os.path.join(work, "timeline.jsonl"))
    samples = lines(os.path.join(work, "samples.jsonl"))
    started = run["started"]
    start = math.floor(started)
    rows = timeline_rows(timeline, samples, start)
    n, established = run["n"], run["ss_established"] or 0
    ramp_secs = load.get("ramp_secs") or 0
    hold_start = started - start + ramp_secs
    hold_end = hold_start + run["hold"]
    in_hold = [r.get("echo_p99_us") for r in rows
               if r["elapsed"] >= hold_start and r["elapsed"] + 1 <= hold_end]
    stop = stopped(run, load, timeline, samples, limits)
    rss_delta = (run["rss_during"] or 0) - (run["rss_before"] or 0)
    slab_growth = ((run["slab_during_kib"] or 0) - (run["slab_before_kib"] or 0)) * 1024
    tcp_buffers = (run["tcp_buffer_server"] or 0) + (run["tcp_buffer_client"] or 0)
    s = limits["sizing"]
    return {
        "command": run["command"],
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "ok": run["load_status"] == 0 and established >= n,
        "sizing": s,
        "machine": {
            "kernel": platform.release(), "cpus": os.cpu_count(),
            "mem_total_kib": mem_total_kib(),
            "rustc": sh("rustc --version"), "wsreactor": run["version"],
            "nofile_hard": limits["nofile"]["hard"],
            "ip_local_port_range": [limits["port_range"]["low"], limits["port_range"]["high"]],
        },
        "requested": n,
        "server": {"name": run["server_name"] or "wsreactor", "command": run["server_command"],
                   "address": run["addr"], "port": run["port"], "workers": run["workers"],
                   "rss_bytes_before": run["rss_before"], "rss_bytes_during": run["rss_during"],
                   # RSS growth from the baseline to the hold, per connection held.
                   "rss_bytes_per_connection": rss_delta / established if established else None},
        "stopped": stop,
        "processes": processes(limits, run, load),
        "os": {"established_on_port": established, "distinct_client_pairs": run["distinct_pairs"],
               "source_addresses": run["source_count"],
               "max_ports_from_one_source": run["max_per_source"],
               "ports_per_source_pair": s["ports_per_source"],
               # What the run's own sockets hold for buffers, both ends: each socket's
               # skmem r + w + f from `ss -m` (receive queue, send queue, reserve), summed.
               # Not a delta of sockstat's `mem`: that counts every TCP socket on the host
               # in pages, and (Linux 6.0+) each CPU keeps up to 1 MiB of it in a local
               # reserve, so a difference of two readings can be negative.
               "tcp_socket_buffer_bytes": tcp_buffers,
               "tcp_socket_buffer_bytes_server_side": run["tcp_buffer_server"],
               "tcp_socket_buffer_bytes_client_side": run["tcp_buffer_client"],
               "sockets_used": run["sockets_used"],
               # Growth of the host's Slab from the baseline to the hold: socket structures
               # live there, and so does everything else the kernel allocates meanwhile. A
               # delta of a host-wide gauge, so negative if the host freed more than the
               # run took (never seen with connections held).
               "kernel_slab_growth_bytes": slab_growth,
               "kernel_slab_growth_bytes_per_socket": slab_growth / (2 * established) if established else None},
        "time_to_establish_secs": (round(run["established_at"] - started, 2)
                                   if run["established_at"] is not None else None),
        "total_secs": round(run["finished"] - started, 2),
        "load": load,
        # The load's RSS over every one of its processes while all are held, per connection:
        # an upper bound (each process's own baseline, a few MiB, is in it).
        "load_rss_bytes_during": run["load_rss_during"],
        "load_rss_bytes_per_connection": run["load_rss_during"] / established if established else None,
        "tls": load.get("tls"),
        "deflate": ({"window_bits": run["deflate_window"], "payload": load.get("payload"),
                     "warmup_bytes": load.get("warmup_bytes"),
                     # What the load offered, and how many handshakes agreed it both ways.
                     "takeover_offered_bits": load.get("deflate_window"),
                     "takeover_agreed": load.get("deflate_takeover", 0)}
                    if load.get("deflate") else None),
        "ramp_cpu": ramp_cpu(rows, started - start + ramp_secs, load.get("verified")),
        "hold_cpu": hold_cpu(rows, hold_start, hold_end),
        "hold": {"secs": run["hold"], "echo_every": run["echo_every"],
                 "start_elapsed": round(hold_start, 2), "end_elapsed": round(hold_end, 2),
                 # Every second's p99 bounds the p99 of the seconds together.
                 "echo_p99_worst_second_us": max((v for v in in_hold if v is not None), default=None)},
        "baseline": {"rss_bytes": run["rss_before"], "slab_bytes": (run["slab_before_kib"] or 0) * 1024,
                     "tcp_mem_bytes": (run["tcp_mem_before_pages"] or 0) * run["page_size"]},
        "timeline": rows,
    }


def pct(v):
    return f"{v / 1000:.2f} ms" if isinstance(v, (int, float)) else "n/a"


def us(v):
    return "n/a" if v is None else f"{v:,.1f} µs"


def summary(report, path):
    """The printed summary of a report."""
    out = []
    p = out.append
    server, osr, load = report["server"], report["os"], report["load"]
    established = osr["established_on_port"]
    p("")
    who = f"{server['name']}: {server['command']}" if server["command"] else "wsreactor"
    p(f"  server                              {who}")
    p(f"  server port                         {server['address']}  (one port, {server['workers']} process(es)"
      f"{', SO_REUSEPORT' if server['workers'] > 1 else ''})")
    p(f"  established on that port (ss)       {established:,}")
    p(f"  distinct client (address, port)     {osr['distinct_client_pairs']:,}")
    p(f"  client source addresses             {osr['source_addresses']}, at most {osr['max_ports_from_one_source']:,}"
      f" ports from one (range allows {osr['ports_per_source_pair']:,})")
    stop = report["stopped"]
    p(f"  stopped                             {stop['reason']}: {stop['detail']}")
    if report["tls"]:
        t = report["tls"]
        p(f"  TLS                                 {t['version']} {t['cipher_suite']} {t['group']}"
          f" ({t.get('full', 0):,} full handshakes, {t.get('resumed', 0):,} resumed)")
    if report["deflate"]:
        d = report["deflate"]
        offered = d.get("takeover_offered_bits")
        agreed = (f"context takeover of {offered} bits offered, agreed both ways by"
                  f" {d.get('takeover_agreed', 0):,} connections" if offered
                  else "no context takeover offered")
        p(f"  permessage-deflate                  {agreed}; server window"
          f" {d['window_bits'] or 'shared mode'}, {d['payload']} payload,"
          f" {d['warmup_bytes'] or 0:,} bytes of warm-up per connection")
    if established:
        p(f"  server RSS                          {server['rss_bytes_during'] / 2**20:,.1f} MiB in all,"
          f" {server['rss_bytes_per_connection']:,.1f} B per connection")
        p(f"  load RSS                            {report['load_rss_bytes_during'] / 2**20:,.1f} MiB in all,"
          f" {report['load_rss_bytes_per_connection']:,.1f} B per connection (an upper bound)")
        slab = osr["kernel_slab_growth_bytes"]
        p(f"  kernel slab growth (/proc/meminfo)  {slab / 2**20:,.1f} MiB for {2 * established:,} sockets"
          f" (both ends), {slab / (2 * established):,.0f} B per socket")
        p(f"  kernel socket buffers (ss -m)       {osr['tcp_socket_buffer_bytes'] / 2**20:,.1f} MiB,"
          f" {osr['tcp_socket_buffer_bytes'] / (2 * established):,.0f} B per socket")
    t = report["time_to_establish_secs"]
    p(f"  time to establish all               {'n/a (not all were)' if t is None else f'{t} s'}")
    r = report["ramp_cpu"]
    p(f"  ramp CPU per handshake              server {us(r['server_us_per_connection'])}"
      f" (user {us(r['server_user_us_per_connection'])}, system {us(r['server_system_us_per_connection'])}),"
      f" load {us(r['load_us_per_connection'])} (user {us(r['load_user_us_per_connection'])},"
      f" system {us(r['load_system_us_per_connection'])}); host {r['host_cores_busy_avg']} of {r['cpus']} cores busy")
    h = report["hold_cpu"]
    p(f"  hold CPU per echo                   server {us(h['server_us_per_echo'])}"
      f" (user {us(h['server_user_us_per_echo'])}, system {us(h['server_system_us_per_echo'])}),"
      f" load {us(h['load_us_per_echo'])} (user {us(h['load_user_us_per_echo'])},"
      f" system {us(h['load_system_us_per_echo'])}); {h['echoes']:,} echoes in {h['seconds']} s")
    p(f"  processes                           server {report['processes']['server']},"
      f" load {report['processes']['load']}: {report['processes']['why']}")
    p(f"  load: established / verified        {load.get('established', 0):,} / {load.get('verified', 0):,}"
      f" of {load.get('requested', 0):,} ({load.get('processes')} client processes,"
      f" ramp {load.get('ramp_secs') or 0:.1f} s)")
    p(f"  load: echoes verified (all rounds)  {load.get('echoes', 0):,}")
    p(f"  load: closed cleanly                {load.get('closed_clean', 0):,}")
    p(f"  load: failed                        {load.get('failed', 0):,} {load.get('failures') or ''}")
    for name in ("handshake_us", "echo_rtt_us", "hold_echo_rtt_us"):
        hist = load.get(name) or {}
        if not hist.get("count"):
            p(f"  {name:<35} n/a (none measured)")
            continue
        p(f"  {name:<35} p50 {pct(hist.get('p50'))}  p99 {pct(hist.get('p99'))}"
          f"  p999 {pct(hist.get('p999'))}  max {pct(hist.get('max'))}")
    p(f"  hold: the worst second's echo p99   {pct(report['hold']['echo_p99_worst_second_us'])}")
    p(f"\n  report: {path}")
    return "\n".join(out)


def main(argv):
    work, path = argv
    report = build(work)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(summary(report, path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
