#!/usr/bin/env python3
"""The rows and medians of scripts/rooms.sh and scripts/rooms_hosts.sh: one chat room
run a few ways, round after round, each run one row; then each way's medians.

    rooms_rows.py row SETUP ROUND STATUS SERVER_TICKS REDIS_TICKS HZ LOAD_JSON STATS_JSON
        prints one row (JSON) of a run: `wsreactor load --chat --json`'s report, the
        server's and Redis's CPU ticks over it (REDIS_TICKS "-": no Redis in this
        setup), the load's exit status and the bus counters from /stats (summed over
        servers, if several). A run is ok when the load succeeded, every member got
        every message and nothing went unpublished.
    rooms_rows.py summary ROWS_JSONL REPORT_JSON SETUP...
        prints the medians of each setup's rows, in this order, writes the report
        (the machine, every row, the medians) and exits 1 unless every row is ok.
        WSREACTOR_VERSION in the environment stamps the build.

Stdlib only.
"""

import json
import os
import statistics
import sys

MEDIANS = ("deliveries_per_sec", "p50_us", "p99_us", "server_cpu_us_per_delivery",
           "redis_cpu_us_per_message")


def row(setup, rnd, status, sticks, rticks, hz, load, stats):
    chat = json.load(open(load))["chat"]
    stats = json.load(open(stats))
    got = chat["deliveries_received"]
    unpublished = stats.get("pubsub_unpublished_total", 0)
    per_tick = 1e6 / int(hz)
    print(json.dumps({
        "setup": setup, "round": int(rnd),
        "ok": status == "0" and chat["deliveries_missing"] == 0 and unpublished == 0,
        "deliveries": got, "expected": chat["deliveries_expected"],
        "deliveries_per_sec": chat["deliveries_per_sec"],
        "p50_us": chat["delivery_us"]["p50"], "p99_us": chat["delivery_us"]["p99"],
        "server_cpu_us_per_delivery": int(sticks) * per_tick / got if got else None,
        "redis_cpu_us_per_message": (int(rticks) * per_tick / chat["messages_sent"]
                                     if rticks != "-" and chat["messages_sent"] else None),
        "published": stats.get("pubsub_published_total", 0),
        "received": stats.get("pubsub_received_total", 0),
        "unpublished": unpublished,
    }))


def summary(rows_path, report, *setups):
    rows = [json.loads(line) for line in open(rows_path)]
    med = {}
    print(f"\n  {'setup':<6} {'deliveries/s':>12} {'p50 ms':>7} {'p99 ms':>7}"
          f" {'server us/deliv':>15} {'redis us/msg':>12}  ok")
    for setup in setups:
        rs = [r for r in rows if r["setup"] == setup]

        def m(k):
            return statistics.median(r[k] for r in rs) if all(r[k] is not None for r in rs) else None

        med[setup] = x = {k: m(k) for k in MEDIANS}
        redis = f"{x['redis_cpu_us_per_message']:.1f}" if x["redis_cpu_us_per_message"] is not None else "-"
        print(f"  {setup:<6} {x['deliveries_per_sec']:>12,.0f} {x['p50_us'] / 1000:>7.1f}"
              f" {x['p99_us'] / 1000:>7.1f} {x['server_cpu_us_per_delivery']:>15.2f} {redis:>12}"
              f"  {all(r['ok'] for r in rs)}")
    json.dump({"machine": {"kernel": os.uname().release, "cpus": os.cpu_count(),
                           "wsreactor": os.environ.get("WSREACTOR_VERSION", "unknown")},
               "rows": rows, "medians": med}, open(report, "w"), indent=2)
    print(f"\n  report: {report}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    if len(sys.argv) >= 10 and sys.argv[1] == "row":
        row(*sys.argv[2:10])
    elif len(sys.argv) >= 5 and sys.argv[1] == "summary":
        sys.exit(summary(*sys.argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
