#!/usr/bin/env python3
"""Renders a scripts/scale.sh JSON report as one self-contained HTML page: the
headline figures and the machine stamp on top, then one chart per measurement over
the run's seconds (connections, handshakes/s, echoes/s, handshake and echo latency
p50/p99, server RSS, CPU, kernel socket memory).

    scale_report.py REPORT.json OUT.html

Self-contained: inline CSS and SVG, no script, nothing loaded from anywhere, so the
file can be mailed, attached to an issue or opened offline. Stdlib only.
"""

import html
import json
import math
import sys

MIB = 2**20
WIDTH, HEIGHT = 880, 210
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 28
COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706"]

# (id, title, unit, [(row key, series label)]): the charts, top to bottom.
CHARTS = [
    ("established", "Established connections", "", [("established", "established")]),
    ("handshakes", "Handshakes per second", "/s",
     [("handshakes", "handshakes"), ("failed", "failed")]),
    ("echoes", "Echoes per second", "/s", [("echoes", "echoes")]),
    ("handshake-latency", "Handshake latency (connect to 101)", "ms",
     [("handshake_p50_ms", "p50"), ("handshake_p99_ms", "p99")]),
    ("echo-latency", "Echo round trip", "ms",
     [("echo_p50_ms", "p50"), ("echo_p99_ms", "p99")]),
    ("server-rss", "Server RSS, all workers", "MiB", [("server_rss_mib", "RSS")]),
    ("cpu", "CPU (cores)", "",
     [("server_cpu", "server"), ("load_cpu", "load generator"),
      ("other_cpu", "other programs"), ("host_cpu", "whole host")]),
    ("kernel-memory", "Kernel socket memory", "MiB",
     [("slab_mib", "slab, growth since start"), ("tcp_mem_mib", "TCP buffers, whole host (sockstat mem)")]),
]


def number(v, digits=0):
    """1234567 -> '1,234,567'; None -> 'n/a'."""
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def ms(us):
    return None if us is None else us / 1000


def short(v):
    """An axis label: 1.5k, 2M, 0.25."""
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def nice_ticks(top, count=4):
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [round(i * step, 10) for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def rows_for_charts(report):
    """The report's per-second rows, with the derived units the charts plot."""
    slab0 = report.get("baseline", {}).get("slab_bytes")
    rows = []
    for r in report.get("timeline", []):
        # A row covers the second from `elapsed`; gauges are read at its end, and
        # counts and latencies are over it: plotted at its end.
        row = dict(r, x=r["elapsed"] + 1)
        for name in ("handshake", "echo"):
            for q in ("p50", "p99"):
                row[f"{name}_{q}_ms"] = ms(r.get(f"{name}_{q}_us"))
        if r.get("server_rss_bytes") is not None:
            row["server_rss_mib"] = r["server_rss_bytes"] / MIB
        if r.get("tcp_mem_bytes") is not None:
            row["tcp_mem_mib"] = r["tcp_mem_bytes"] / MIB
        if r.get("slab_bytes") is not None and slab0 is not None:
            row["slab_mib"] = (r["slab_bytes"] - slab0) / MIB
        rows.append(row)
    return rows


def chart(chart_id, title, unit, series, rows, phases):
    """One line chart as inline SVG; a gap in a series (no value) breaks its line."""
    x0, x1 = 0, max((r["x"] for r in rows), default=1)
    x1 = max(x1, x0 + 1)
    values = [r.get(k) for r in rows for k, _ in series if r.get(k) is not None]
    ticks = nice_ticks(max(values, default=0))
    y1 = ticks[-1] or 1
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (x - x0) / (x1 - x0) * pw

    def py(y):
        return TOP + ph - y / y1 * ph

    out = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           f'role="img" aria-label="{html.escape(title)}">']
    for name, start, end, shaded in phases:
        if start is None or end is None or end <= x0 or start >= x1:
            continue
        a, b = px(max(start, x0)), px(min(end, x1))
        if shaded:
            out.append(f'<rect class="phase" x="{a:.1f}" y="{TOP}" width="{b - a:.1f}" height="{ph}"/>')
        out.append(f'<text class="phase-label" x="{a + 4:.1f}" y="{TOP + 12}">{name}</text>')
    for t in ticks:
        y = py(t)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{short(t)}</text>')
    for t in nice_ticks(x1 - x0, 8):
        x = px(x0 + t)
        if x <= WIDTH - RIGHT + 0.5:
            out.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
                       f'{short(x0 + t)} s</text>')
    for i, (key, label) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        segment = []
        for r in rows + [{}]:
            v = r.get(key)
            if v is not None:
                segment.append(f"{px(r['x']):.1f},{py(v):.1f}")
                continue
            if len(segment) == 1:
                x, y = segment[0].split(",")
                out.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{color}"/>')
            elif segment:
                out.append(f'<polyline class="series" data-series="{key}" stroke="{color}" '
                           f'points="{" ".join(segment)}"/>')
            segment = []
    out.append("</svg>")
    legend = " ".join(
        f'<span class="key"><i style="background:{COLORS[i % len(COLORS)]}"></i>{html.escape(label)}</span>'
        for i, (_, label) in enumerate(series))
    unit = f" <small>({html.escape(unit)})</small>" if unit else ""
    return (f'<section class="chart" id="{chart_id}"><h2>{html.escape(title)}{unit}</h2>'
            f'<div class="legend">{legend}</div>{"".join(out)}</section>')


def slab_per_socket(osr):
    # Reports from before the rename call it kernel_slab_bytes_per_socket.
    return osr.get("kernel_slab_growth_bytes_per_socket", osr.get("kernel_slab_bytes_per_socket"))


def split(cpu, unit):
    """'user U + system S µs' for each side, where the report has the split."""
    parts = []
    for side in ("server", "load"):
        u, s = cpu.get(f"{side}_user_us_per_{unit}"), cpu.get(f"{side}_system_us_per_{unit}")
        if u is not None and s is not None:
            parts.append(f"{side} user {number(u, 1)} + system {number(s, 1)} µs")
    return ", ".join(parts) or "user and system not sampled apart"


def stop_card(report):
    """Where and why the run stopped, or that it did not."""
    stop = report.get("stopped")
    if not stop:
        return None
    if stop["reason"] == "did_not_stop":
        return ("stopped", "did not stop", stop["detail"])
    return ("stopped: " + stop["reason"].replace("_", " "),
            number(stop.get("evidence", {}).get("established_when_stopped")) + " held", stop["detail"])


def headline(report):
    """The figures a reader looks for first, as (label, value, note) cards."""
    load, server, osr = report["load"], report["server"], report["os"]
    n = report["requested"]
    hold = report.get("hold", {})
    held = load.get("hold_echo_rtt_us") or {}
    cards = [
        ("established on one port", number(osr["established_on_port"]),
         f"of {number(n)} requested (ss, server port {server['port']})"),
        ("verified / failed", f"{number(load['verified'])} / {number(load['failed'])}",
         ", ".join(f"{k} {number(v)}" for k, v in (load.get("failures") or {}).items()) or "no failures"),
        ("ramp", f"{load['ramp_secs']:.1f} s", f"{number(load['connect_rate'])} connections/s"),
        ("handshake p99", f"{number(ms(load['handshake_us']['p99']), 1)} ms",
         f"p50 {number(ms(load['handshake_us']['p50']), 1)} ms"),
        ("echo RTT p99, hold",
         f"{number(ms(held.get('p99')), 1)} ms" if held.get("count") else "n/a",
         (f"p50 {number(ms(held.get('p50')), 1)} ms; worst second "
          f"{number(ms(hold.get('echo_p99_worst_second_us')), 1)} ms; " if held.get("count")
          else "no echoes while held; ")
         + f"whole run {number(ms(load['echo_rtt_us']['p99']), 1)} ms"
         " (with the ramp's verifications and the echoes while closing)"),
        ("echoes verified", number(load["echoes"]),
         f"one per connection every {hold.get('echo_every', '?')} s while held"),
        ("server RSS per connection", f"{number(server['rss_bytes_per_connection'], 1)} B",
         f"{number(server['rss_bytes_during'] / MIB, 1)} MiB in {server['workers']} workers"),
        ("kernel slab growth per socket", f"{number(slab_per_socket(osr))} B",
         f"{number(2 * osr['established_on_port'])} sockets, both ends (the host's Slab growth)"),
        ("kernel socket buffers", f"{number(osr['tcp_socket_buffer_bytes'] / MIB, 1)} MiB",
         "the run's TCP sockets, both ends: receive and send queues and reserve (ss -m)"),
        ("source addresses", number(osr["source_addresses"]),
         f"at most {number(osr['max_ports_from_one_source'])} ports from one"),
    ]
    # Reports from before these figures lack them.
    if report.get("load_rss_bytes_per_connection") is not None:
        cards.append(("load RSS per connection",
                      f"{number(report['load_rss_bytes_per_connection'], 1)} B",
                      f"{number(report['load_rss_bytes_during'] / MIB, 1)} MiB in "
                      f"{load['processes']} processes (an upper bound: their baselines too)"))
    cpu = report.get("ramp_cpu")
    if cpu and cpu.get("server_us_per_connection") is not None:
        cards.append(("ramp CPU per connection",
                      f"{number(cpu['server_us_per_connection'])} + "
                      f"{number(cpu['load_us_per_connection'])} µs",
                      f"server + load: the handshakes{' (TLS too)' if report.get('tls') else ''}"
                      f" and the verification echo; {split(cpu, 'connection')}; host "
                      f"{cpu['host_cores_busy_avg']} of {cpu['cpus']} cores busy"))
    cpu = report.get("hold_cpu")
    if cpu and cpu.get("server_us_per_echo") is not None:
        cards.append(("hold CPU per echo",
                      f"{number(cpu['server_us_per_echo'], 1)} + {number(cpu['load_us_per_echo'], 1)} µs",
                      f"server + load over {cpu['seconds']} s of the hold, {number(cpu['echoes'])} echoes; "
                      f"{split(cpu, 'echo')}; host {cpu['host_cores_busy_avg']} cores busy"))
    procs = report.get("processes")
    if procs:
        cards.append(("processes, server / load", f"{procs['server']} / {procs['load']}", procs["why"]))
    stop = stop_card(report)
    if stop:
        cards.insert(0, stop)
    tls = report.get("tls")
    if tls:
        cards.insert(0, ("TLS", tls["version"],
                         f"{tls['cipher_suite']}, {tls['group']}; {number(tls.get('full', 0))} full "
                         f"handshakes, {number(tls.get('resumed', 0))} resumed"))
    return "".join(
        f'<div class="card"><div class="label">{html.escape(a)}</div>'
        f'<div class="value">{html.escape(b)}</div><div class="note">{html.escape(c)}</div></div>'
        for a, b, c in cards)


def evidence(report):
    """Where and why a run stopped short: the evidence, as the JSON has it."""
    stop = report.get("stopped") or {}
    ev = stop.get("evidence")
    if not ev:
        return ""
    items = "".join(f"<dt>{html.escape(k.replace('_', ' '))}</dt><dd>{html.escape(str(v))}</dd>"
                    for k, v in ev.items())
    return (f'<section class="evidence"><h2>Why it stopped: {html.escape(stop["reason"].replace("_", " "))}'
            f'</h2><p>{html.escape(stop["detail"])}</p><dl>{items}</dl></section>')


def stamp(report):
    m = report["machine"]
    items = [
        ("date", report.get("date", "")),
        ("command", report.get("command", "")),
        ("kernel", m["kernel"]),
        ("CPUs", m["cpus"]),
        ("memory", f"{m['mem_total_kib'] / 2**20:.1f} GiB"),
        ("RLIMIT_NOFILE hard", number(m["nofile_hard"])),
        ("ephemeral ports", "–".join(map(str, m["ip_local_port_range"]))),
        ("rustc", m["rustc"]),
        ("wsreactor", m["wsreactor"]),
        ("server command", report["server"].get("command") or "wsreactor serve (scripts/scale.sh)"),
        ("server / load processes", f"{report['server']['workers']} / {report['load']['processes']}"),
    ]
    return "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items)


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 0; }
.verdict { font-weight: 600; } .ok { color: #047857; } .failed { color: #b91c1c; }
.cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; max-width: 880px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 10px; }
.label { color: #555; font-size: 12px; } .value { font-size: 20px; font-weight: 600; }
.note { color: #666; font-size: 12px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 12px; font-size: 12px; color: #444; max-width: 880px; }
dt { color: #777; } dd { margin: 0; font-family: ui-monospace, monospace; }
.chart { margin: 18px 0; max-width: 880px; }
.legend { font-size: 12px; color: #444; margin: 2px 0; }
.key { margin-right: 14px; } .key i { display: inline-block; width: 14px; height: 3px; margin: 0 4px 3px 0; }
svg { display: block; }
.grid { stroke: #e5e7eb; } .axis { font-size: 11px; fill: #666; }
.series { fill: none; stroke-width: 1.6; stroke-linejoin: round; }
.phase { fill: #f3f4f6; } .phase-label { font-size: 11px; fill: #9ca3af; }
"""


def render(report):
    rows = rows_for_charts(report)
    load = report["load"]
    ok = report.get("ok", load.get("ok"))
    hold = report.get("hold", {})
    start, end = hold.get("start_elapsed"), hold.get("end_elapsed")
    last = max((r["x"] for r in rows), default=None)
    phases = [("ramp", 0, start, False), ("hold", start, end, True), ("close", end, last, False)]
    charts = "".join(chart(i, t, u, s, rows, phases) for i, t, u, s in CHARTS)
    stop = report.get("stopped") or {}
    verdict = ("OK: every connection established on one port, verified and echoing"
               if ok else f"STOPPED: {stop['detail']}" if stop.get("detail")
               else "FAILED: see the failures and the charts")
    kind = "secure (wss://) " if report.get("tls") else ""
    name = report["server"].get("name", "wsreactor")
    title = f"{name} scale: {number(report['requested'])} {kind}WebSocket connections on one port"
    return page(title, CSS, f"""<div class="verdict {'ok' if ok else 'failed'}">{html.escape(verdict)}</div>
<div class="cards">{headline(report)}</div>
{evidence(report)}
<dl>{stamp(report)}</dl>
{charts}""")


def page(title, css, body):
    """One self-contained page: the title, inline CSS, the body; no script."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{css}</style></head>
<body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def main():
    with open(sys.argv[1]) as f:
        report = json.load(f)
    with open(sys.argv[2], "w") as f:
        f.write(render(report))


if __name__ == "__main__":
    main()
