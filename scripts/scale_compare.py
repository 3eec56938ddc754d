#!/usr/bin/env python3
"""Puts several scripts/scale.sh runs side by side: one column per run (wsreactor, or
any server run with --server), one row per figure: what was held and verified, where
and why the run stopped, bytes per connection in user space and in the kernel, the
ramp, handshake and echo p99, CPU per handshake and per echo (server and load, user
and system), and the processes each side ran.

    scale_compare.py REPORT.json... -o compare.html

One self-contained HTML page in the style of scripts/scale_report.py (inline CSS, no
script, nothing loaded from anywhere). Stdlib only.
"""

import argparse
import html
import json
import sys

import scale_report
from scale_report import MIB, ms, number


def us(v):
    return "n/a" if v is None else f"{v:,.1f} µs"


def cpu(block, unit, side):
    """'T µs (user U + system S)' for one side of a ramp_cpu or hold_cpu block."""
    if not block:
        return "n/a"
    total = block.get(f"{side}_us_per_{unit}")
    u, s = block.get(f"{side}_user_us_per_{unit}"), block.get(f"{side}_system_us_per_{unit}")
    if total is None:
        return "n/a"
    if u is None or s is None:
        return us(total)
    return f"{us(total)} (user {number(u, 1)} + system {number(s, 1)})"


def nbytes(v, digits=0):
    return "n/a" if v is None else f"{number(v, digits)} B"


def per_connection(value, established):
    return None if value is None or not established else value / established


def rss_row(server, stop):
    """Server RSS growth per connection: at the hold, or (a server that exited before it)
    at the sampler's last reading before the stop."""
    per = server.get("rss_bytes_per_connection")
    if per is not None:
        return ("server RSS per connection", nbytes(per, 1),
                f"{number((server.get('rss_bytes_during') or 0) / MIB, 1)} MiB in all: user space")
    ev = (stop or {}).get("evidence") or {}
    rss, held, before = ev.get("server_rss_bytes"), ev.get("established_at_that_second"), server.get("rss_bytes_before")
    if rss is None or not held or before is None:
        return ("server RSS per connection", "n/a", "no connection held at the hold")
    return ("server RSS per connection", nbytes((rss - before) / held, 1),
            f"{number(rss / MIB, 1)} MiB with {number(held)} connections, {ev.get('sampled_at_elapsed')} s"
            " into the run (the last sample before it stopped)")


def rows(report):
    """(figure, value, note) for one run, in the page's row order."""
    load, server, osr = report["load"], report["server"], report["os"]
    established = osr["established_on_port"]
    stop = report.get("stopped") or {}
    held = load.get("hold_echo_rtt_us") or {}
    slab = osr.get("kernel_slab_growth_bytes", osr.get("kernel_slab_bytes"))
    procs = report.get("processes") or {}
    tcp = osr.get("tcp_socket_buffer_bytes")
    if "tcp_socket_buffer_bytes_server_side" not in osr:
        tcp = None  # a report from before it was measured per socket (ss -m)
    return [
        ("server", server.get("name", "wsreactor"), server.get("command") or "wsreactor serve"),
        ("requested", number(report["requested"]), report.get("date", "")),
        ("established on the port (ss)", number(established), ""),
        ("verified / failed", f"{number(load.get('verified'))} / {number(load.get('failed'))}",
         ", ".join(f"{k} {number(v)}" for k, v in (load.get("failures") or {}).items())),
        ("stopped", (stop.get("reason") or "n/a").replace("_", " "), stop.get("detail", "")),
        rss_row(server, stop),
        ("kernel slab per connection", nbytes(per_connection(slab, established)),
         "growth of the host's Slab, both ends' sockets"),
        ("kernel socket buffers per connection", nbytes(per_connection(tcp, established)),
         "ss -m skmem r + w + f, both ends"),
        ("ramp", f"{load.get('ramp_secs') or 0:.1f} s", f"{number(load.get('connect_rate'))} connections/s"),
        ("handshake p99", f"{number(ms((load.get('handshake_us') or {}).get('p99')), 1)} ms",
         f"p50 {number(ms((load.get('handshake_us') or {}).get('p50')), 1)} ms"),
        ("echo p99, hold", f"{number(ms(held.get('p99')), 1)} ms" if held.get("count") else "n/a",
         f"{number(held.get('count'))} echoes while held" if held.get("count") else "no hold"),
        ("server CPU per handshake", cpu(report.get("ramp_cpu"), "connection", "server"), "over the ramp"),
        ("load CPU per handshake", cpu(report.get("ramp_cpu"), "connection", "load"), "over the ramp"),
        ("server CPU per echo", cpu(report.get("hold_cpu"), "echo", "server"), "over the hold"),
        ("load CPU per echo", cpu(report.get("hold_cpu"), "echo", "load"), "over the hold"),
        ("processes, server / load", f"{procs.get('server', server.get('workers'))} / "
         f"{procs.get('load', load.get('processes'))}", procs.get("why", "")),
    ]


CSS = scale_report.CSS + """
table { border-collapse: collapse; margin: 16px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 6px 8px; vertical-align: top; text-align: left; }
th { background: #f9fafb; font-weight: 600; }
td .v { font-weight: 600; } td .n { color: #666; font-size: 12px; max-width: 260px; }
td.stopped .v { color: #b91c1c; } td.did-not-stop .v { color: #047857; }
"""


def render(reports):
    table = [rows(r) for r in reports]
    head = "".join(f"<th>{html.escape(t[0][1])}</th>" for t in table)
    body = []
    for i, (label, _, _) in enumerate(table[0]):
        cells = []
        for t in table:
            _, value, note = t[i]
            cls = ""
            if label == "stopped":
                cls = ' class="did-not-stop"' if value == "did not stop" else ' class="stopped"'
            cells.append(f'<td{cls}><div class="v">{html.escape(str(value))}</div>'
                         f'<div class="n">{html.escape(str(note))}</div></td>')
        body.append(f"<tr><th>{html.escape(label)}</th>{''.join(cells)}</tr>")
    stamps = "".join(f"<dt>{html.escape(r['server'].get('name', 'wsreactor'))}</dt>"
                     f"<dd>{html.escape(r.get('command', ''))} · {html.escape(r.get('date', ''))} · "
                     f"wsreactor {html.escape(r['machine']['wsreactor'])}</dd>" for r in reports)
    m = reports[0]["machine"]
    title = "Connection scaling, side by side"
    return scale_report.page(title, CSS, f"""<div class="note">{html.escape(m['kernel'])}, {m['cpus']} CPUs, {m['mem_total_kib'] / 2**20:.1f} GiB,
RLIMIT_NOFILE hard {number(m['nofile_hard'])}</div>
<table><tr><th></th>{head}</tr>{''.join(body)}</table>
<dl>{stamps}</dl>""")


def main(argv):
    ap = argparse.ArgumentParser(description="scripts/scale.sh reports side by side")
    ap.add_argument("reports", nargs="+", metavar="REPORT.json")
    ap.add_argument("-o", "--out", required=True, metavar="OUT.html")
    args = ap.parse_args(argv)
    reports = []
    for path in args.reports:
        with open(path) as f:
            reports.append(json.load(f))
    with open(args.out, "w") as f:
        f.write(render(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
