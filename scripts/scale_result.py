#!/usr/bin/env python3
"""Builds the JSON report of one scripts/scale.sh run from its raw files, and prints
the summary.

    scale_result.py WORK REPORT.json

WORK is the run's work directory: run.json (what the shell measured, every value a
string: see FIELDS), limits.json (`wsreactor limits --json`), load.json (`wsreactor
load --json`), timeline.jsonl (the load's --timeline) and samples.jsonl
(scripts/scale_sample.py). The values come as data, not spliced into Python source.
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
    "command": str, "version": str, "addr": str, "ok": str,
    "started": float, "finished": float, "established_at": float,
    "n": int, "hold": int, "echo_every": int, "port": int, "workers": int, "page_size": int,
    "ss_established": int, "distinct_pairs": int, "source_count": int, "max_per_source": int,
    "ports": int, "hard": int, "port_lo": int, "port_hi": int,
    "rss_before": int, "rss_during": int, "load_rss_during": int,
    "slab_before": int, "slab_during": int, "tcp_mem_before": int, "tcp_mem_during": int,
    "sockets_used": int,
}


def read_run(work):
    with open(os.path.join(work, "run.json")) as f:
        raw = json.load(f)
    return {key: kind(raw[key]) if raw.get(key, "") != "" else None for key, kind in FIELDS.items()}


def main(argv):
    work, path = argv
    R = read_run(work)
    load = json.load(open(os.path.join(work, "load.json")))
    def lines(p):
        try:
            return [json.loads(line) for line in open(p) if line.strip()]
        except OSError:
            return []
    # One row per second: the load generator's timeline and the samples, by Unix second.
    start = math.floor(R['started'])
    rows = {}
    for r in lines(os.path.join(work, "timeline.jsonl")):
        row = rows.setdefault(r["t"], {"t": r["t"]})
        for k in ("established", "pending", "handshakes", "verified", "echoes", "failed", "closed"):
            row[k] = r[k]
        for name, key in (("handshake", "handshake_us"), ("echo", "echo_rtt_us")):
            for q in ("p50", "p99"):
                row[f"{name}_{q}_us"] = r[key][q]
    for r in lines(os.path.join(work, "samples.jsonl")):
        rows.setdefault(r["t"], {"t": r["t"]}).update(r)
    timeline = [dict(rows[t], elapsed=t - start) for t in sorted(rows) if t >= start]
    hold_start = R['started'] - start + load["ramp_secs"]
    hold_end = hold_start + R['hold']
    in_hold = [r.get("echo_p99_us") for r in timeline
               if r["elapsed"] >= hold_start and r["elapsed"] + 1 <= hold_end]
    n = R['n']
    established = R['ss_established']
    # CPU over the ramp (start to every connection verified), each end, per connection: the
    # handshakes (TCP, TLS if any, WebSocket) and the verification echo. By the sampler's
    # whole seconds, up to the one the ramp ends in (so a second of the hold's start may be
    # in it: meaningful for ramps of many seconds); host_cpu says whether the cores bound it.
    ramp = [r for r in timeline if r["elapsed"] <= math.ceil(R['started'] - start + load["ramp_secs"])]
    def per_conn(key):
        total = sum(r.get(key) or 0 for r in ramp)
        return round(total * 1e6 / load["verified"], 1) if load["verified"] else None
    ramp_cpu = {"server_us_per_connection": per_conn("server_cpu"),
                "load_us_per_connection": per_conn("load_cpu"),
                "host_cores_busy_avg": round(sum(r.get("host_cpu") or 0 for r in ramp) / len(ramp), 2) if ramp else None,
                "cpus": os.cpu_count()}
    rss_delta = R['rss_during'] - R['rss_before']
    kernel_delta = (R['tcp_mem_during'] - R['tcp_mem_before']) * R['page_size']
    slab_delta = (R['slab_during'] - R['slab_before']) * 1024
    def sh(cmd):
        try: return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except Exception: return ""
    report = {
        "command": R['command'],
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(R['started'])),
        "ok": R['ok'] == "true",
        "sizing": json.load(open(os.path.join(work, "limits.json")))["sizing"],
        "machine": {
            "kernel": platform.release(), "cpus": os.cpu_count(),
            "mem_total_kib": int(open("/proc/meminfo").readline().split()[1]),
            "rustc": sh("rustc --version"), "wsreactor": R['version'],
            "nofile_hard": R['hard'], "ip_local_port_range": [R['port_lo'], R['port_hi']],
        },
        "requested": n,
        "server": {"address": R['addr'], "port": R['port'], "workers": R['workers'],
                   "rss_bytes_before": R['rss_before'], "rss_bytes_during": R['rss_during'],
                   "rss_bytes_per_connection": rss_delta / established if established else None},
        "os": {"established_on_port": established, "distinct_client_pairs": R['distinct_pairs'],
               "source_addresses": R['source_count'], "max_ports_from_one_source": R['max_per_source'],
               "ports_per_source_pair": R['ports'],
               "tcp_socket_buffer_bytes": kernel_delta, "sockets_used": R['sockets_used'],
               "kernel_slab_bytes": slab_delta,
               "kernel_slab_bytes_per_socket": slab_delta / (2 * established) if established else None},
        "time_to_establish_secs": round(R['established_at'] - R['started'], 2) if R['established_at'] is not None else None,
        "total_secs": round(R['finished'] - R['started'], 2),
        "load": load,
        # The load's RSS over every one of its processes while all are held, per connection:
        # an upper bound (each process's own baseline, a few MiB, is in it).
        "load_rss_bytes_during": R['load_rss_during'],
        "load_rss_bytes_per_connection": R['load_rss_during'] / established if established else None,
        "tls": load.get("tls"),
        "ramp_cpu": ramp_cpu,
        "hold": {"secs": R['hold'], "echo_every": R['echo_every'],
                 "start_elapsed": round(hold_start, 2), "end_elapsed": round(hold_end, 2),
                 # Every second's p99 bounds the p99 of the seconds together.
                 "echo_p99_worst_second_us": max((v for v in in_hold if v is not None), default=None)},
        "baseline": {"rss_bytes": R['rss_before'], "slab_bytes": R['slab_before'] * 1024,
                     "tcp_mem_bytes": R['tcp_mem_before'] * R['page_size']},
        "timeline": timeline,
    }
    json.dump(report, open(path, "w"), indent=2)

    def pct(h, k):
        v = (h or {}).get(k)
        return f"{v / 1000:.2f} ms" if isinstance(v, (int, float)) else "n/a"
    L = load
    print()
    print(f"  server port                         {report['server']['address']}  (one port, {R['workers']} SO_REUSEPORT workers)")
    print(f"  established on that port (ss)       {established:,}")
    print(f"  distinct client (address, port)     {R['distinct_pairs']:,}")
    print(f"  client source addresses             {R['source_count']}, at most {R['max_per_source']:,} ports from one (range allows {R['ports']:,})")
    if report["tls"]:
        t = report["tls"]
        print(f"  TLS                                 {t['version']} {t['cipher_suite']} {t['group']}"
              f" ({t.get('full', 0):,} full handshakes, {t.get('resumed', 0):,} resumed)")
    if established:
        print(f"  server RSS                          {R['rss_during'] / 2**20:,.1f} MiB in all, {rss_delta / established:,.1f} B per connection")
        print(f"  load RSS                            {R['load_rss_during'] / 2**20:,.1f} MiB in all, {R['load_rss_during'] / established:,.1f} B per connection (an upper bound)")
        print(f"  kernel slab memory (/proc/meminfo)  {slab_delta / 2**20:,.1f} MiB for {2 * established:,} sockets"
              f" (both ends), {slab_delta / (2 * established):,.0f} B per socket")
        print(f"  kernel socket buffers (sockstat)    {kernel_delta / 2**20:,.1f} MiB")
    print(f"  time to establish all               {report['time_to_establish_secs']} s")
    print(f"  ramp CPU per connection             server {ramp_cpu['server_us_per_connection']} µs, load {ramp_cpu['load_us_per_connection']} µs"
          f" (host {ramp_cpu['host_cores_busy_avg']} of {ramp_cpu['cpus']} cores busy on average)")
    print(f"  load: established / verified        {L['established']:,} / {L['verified']:,} of {L['requested']:,}"
          f" ({L['processes']} client processes, ramp {L['ramp_secs']:.1f} s)")
    print(f"  load: echoes verified (all rounds)  {L['echoes']:,}")
    print(f"  load: closed cleanly                {L['closed_clean']:,}")
    print(f"  load: failed                        {L['failed']:,} {L['failures'] or ''}")
    for name in ("handshake_us", "echo_rtt_us", "hold_echo_rtt_us"):
        h = L[name]
        if not h.get("count"):
            print(f"  {name:<35} n/a (none measured)")
            continue
        print(f"  {name:<35} p50 {pct(h,'p50')}  p99 {pct(h,'p99')}  p999 {pct(h,'p999')}  max {pct(h,'max')}")
    hp = report["hold"]["echo_p99_worst_second_us"]
    print(f"  hold: the worst second's echo p99   {pct({'v': hp}, 'v')}")
    print(f"\n  report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
