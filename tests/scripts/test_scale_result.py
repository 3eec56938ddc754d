"""scripts/scale_result.py must compute each figure of a scripts/scale.sh report from
the run's raw files as its name says: fed a small synthetic run (run.json, limits.json,
load.json, timeline.jsonl, samples.jsonl), every figure is checked against what the
raw samples give by hand, every figure is non-negative (also where the host's sockstat
`mem` fell below its baseline, which once made tcp_socket_buffer_bytes negative), and
each way a run stops short is named with its evidence. scripts/scale.sh runs this
before every run.

    python3 -m unittest tests/scripts/test_scale_result.py
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import scale_result  # noqa: E402

T0 = 1_800_000_000  # the run's first whole second
MIB = 2**20


def limits():
    return {
        "nofile": {"soft": 20000, "hard": 20000},
        "port_range": {"low": 32768, "high": 60999},
        "mem_total_bytes": 24 * 2**30,
        "sizing": {"connections": 1000, "fd_reserve": 100, "per_process": 19900,
                   "server_workers": 1, "server_headroom_percent": 15, "load_procs": 1,
                   "sources": "127.0.0.2-127.0.0.40", "source_count": 39,
                   "ports_per_source": 28232, "port_fill": 0.25, "max_per_source": 26,
                   "descriptors_needed": 2100},
    }


def load(**over):
    hist = {"count": 1000, "p50": 1000, "p99": 5000, "p999": 6000, "max": 7000}
    r = {"processes": 1, "requested": 1000, "established": 1000, "verified": 1000,
         "failed": 0, "failures": {}, "echoes": 3000, "closed_clean": 1000, "ramp_secs": 1.5,
         "connect_rate": 666.0, "handshake_us": hist, "echo_rtt_us": hist,
         "hold_echo_rtt_us": hist, "ok": True}
    r.update(over)
    return r


def sample(t, cpu, **over):
    """A sampler row at second T0 + t; cpu = running totals (server user, server system,
    load user, load system) in CPU seconds."""
    su, ss, lu, ls = cpu
    row = {"t": T0 + t, "server_rss_bytes": 10 * MIB, "server_cpu": 0.5, "load_cpu": 0.5,
           "host_cpu": 1.0, "tcp_mem_bytes": 4096, "tcp_inuse": 2000, "slab_bytes": 600 * MIB,
           "mem_available_bytes": 20 * 2**30, "server_fds": 1010, "server_fds_max": 1010,
           "server_fds_limit": 20000, "server_user_cpu_secs": su, "server_system_cpu_secs": ss,
           "load_user_cpu_secs": lu, "load_system_cpu_secs": ls}
    row.update(over)
    return row


def timeline(t, established, echoes=0):
    q = {"p50": 1000, "p99": 2000}
    return {"t": T0 + t, "established": established, "pending": 0, "handshakes": 0,
            "verified": 0, "echoes": echoes, "failed": 0, "closed": 0,
            "handshake_us": q, "echo_rtt_us": q}


def run_json(**over):
    r = {"command": "scripts/scale.sh 1000", "version": "abc1234", "addr": "127.0.0.1:40000",
         "server_name": "wsreactor", "server_command": "", "started": str(T0 + 0.25),
         "finished": str(T0 + 8.5), "established_at": str(T0 + 1.75), "n": "1000", "hold": "4",
         "echo_every": "1", "port": "40000", "workers": "1", "page_size": "4096",
         "ss_established": "1000", "distinct_pairs": "1000", "source_count": "39",
         "max_per_source": "26", "rss_before": str(8 * MIB), "rss_during": str(8 * MIB + 100_000),
         "load_rss_during": str(6 * MIB), "slab_before_kib": str(500 * 1024),
         "slab_during_kib": str(510 * 1024),
         # The host had many sockets at the baseline: sockstat mem then was far above
         # what it read during the hold (4096 bytes in the samples).
         "tcp_mem_before_pages": "300", "sockets_used": "2100",
         "tcp_buffer_server": "8192", "tcp_buffer_client": "4096", "load_status": "0",
         "stop_kind": "none", "server_exit_status": "", "held_at_stop": "999",
         "server_log_tail": ""}
    r.update(over)
    return r


# A complete run: ramp in seconds 0-1 (the hold starts at 0.25 + 1.5 = 1.75 s), hold to
# 5.75 s: seconds 2, 3 and 4 are wholly inside it. The first sampler row (second 0)
# already carries CPU spent before it (the partial interval before the first row).
CPU = [(0.01, 0.02, 0.03, 0.04),   # t=0
       (0.02, 0.06, 0.05, 0.10),   # t=1: ramp ends in this second
       (0.03, 0.07, 0.06, 0.12),   # t=2: hold
       (0.05, 0.08, 0.07, 0.14),   # t=3: hold
       (0.06, 0.10, 0.08, 0.17),   # t=4: hold
       (0.07, 0.11, 0.09, 0.18)]   # t=5: the hold ends within it
ECHOES = [0, 1000, 300, 300, 400, 200]


class Fixture(unittest.TestCase):
    def build(self, run=None, load_over=None, samples=None, rows=None):
        with tempfile.TemporaryDirectory() as d:
            for name, value in (("run.json", run or run_json()), ("limits.json", limits()),
                                ("load.json", load(**(load_over or {})))):
                with open(os.path.join(d, name), "w") as f:
                    json.dump(value, f)
            if samples is None:
                samples = [sample(t, c) for t, c in enumerate(CPU)]
            if rows is None:
                rows = [timeline(t, 1000 if t else 600, e) for t, e in enumerate(ECHOES)]
            for name, items in (("samples.jsonl", samples), ("timeline.jsonl", rows)):
                with open(os.path.join(d, name), "w") as f:
                    f.writelines(json.dumps(i) + "\n" for i in items)
            report = scale_result.build(d)
            with contextlib.redirect_stdout(io.StringIO()):
                # The summary must print from any report it builds.
                print(scale_result.summary(report, "report.json"))
            return report


class Build(Fixture):
    def test_memory_figures(self):
        r = self.build()
        self.assertEqual(r["server"]["rss_bytes_per_connection"], 100.0)
        self.assertEqual(r["load_rss_bytes_per_connection"], 6 * MIB / 1000)
        self.assertEqual(r["os"]["kernel_slab_growth_bytes"], 10 * MIB)
        self.assertEqual(r["os"]["kernel_slab_growth_bytes_per_socket"], 10 * MIB / 2000)

    def test_socket_buffers_are_the_run_sockets_not_a_sockstat_delta(self):
        r = self.build()
        # sockstat fell from 300 pages to 1 page: a delta would be negative.
        self.assertEqual(r["os"]["tcp_socket_buffer_bytes"], 8192 + 4096)
        self.assertEqual(r["os"]["tcp_socket_buffer_bytes_server_side"], 8192)
        self.assertEqual(r["os"]["tcp_socket_buffer_bytes_client_side"], 4096)

    def test_ramp_cpu_per_handshake(self):
        c = self.build()["ramp_cpu"]
        # Rows 0-1, from the sampling's start: totals at t=1 over 1000 verified.
        self.assertEqual(c["server_user_us_per_connection"], 20.0)
        self.assertEqual(c["server_system_us_per_connection"], 60.0)
        self.assertEqual(c["server_us_per_connection"], 80.0)
        self.assertEqual(c["load_user_us_per_connection"], 50.0)
        self.assertEqual(c["load_system_us_per_connection"], 100.0)
        self.assertEqual(c["load_us_per_connection"], 150.0)
        self.assertEqual(c["seconds"], 2)

    def test_hold_cpu_per_echo(self):
        c = self.build()["hold_cpu"]
        # Seconds 2-4: totals at t=4 less those at t=1, over 300 + 300 + 400 echoes.
        self.assertEqual(c["echoes"], 1000)
        self.assertEqual(c["seconds"], 3)
        self.assertAlmostEqual(c["server_user_us_per_echo"], 40.0)
        self.assertAlmostEqual(c["server_system_us_per_echo"], 40.0)
        self.assertAlmostEqual(c["server_us_per_echo"], 80.0)
        self.assertAlmostEqual(c["load_user_us_per_echo"], 30.0)
        self.assertAlmostEqual(c["load_system_us_per_echo"], 70.0)

    def test_hold_cpu_skips_a_missed_second(self):
        # No sample at t=1: the hold's CPU counts from the last row sampled before it.
        samples = [sample(t, c) for t, c in enumerate(CPU) if t != 1]
        c = self.build(samples=samples)["hold_cpu"]
        self.assertAlmostEqual(c["server_us_per_echo"], (0.16 - 0.03) * 1e6 / 1000)

    def test_latencies_and_times(self):
        r = self.build()
        self.assertEqual(r["time_to_establish_secs"], 1.5)
        self.assertEqual(r["total_secs"], 8.25)
        self.assertEqual(r["hold"]["start_elapsed"], 1.75)
        self.assertEqual(r["hold"]["end_elapsed"], 5.75)
        self.assertEqual(r["hold"]["echo_p99_worst_second_us"], 2000)

    def test_every_figure_is_non_negative(self):
        def walk(v, path):
            if isinstance(v, bool) or v is None or isinstance(v, str):
                return
            if isinstance(v, (int, float)):
                self.assertGreaterEqual(v, 0, path)
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{path}.{k}")
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    walk(x, f"{path}[{i}]")
        walk(self.build(), "report")

    def test_processes_and_why(self):
        p = self.build()["processes"]
        self.assertEqual((p["server"], p["load"], p["nofile_hard"]), (1, 1, 20000))
        self.assertIn("RLIMIT_NOFILE hard 20,000", p["why"])

    def test_a_run_that_did_not_stop_says_so(self):
        s = self.build()["stopped"]
        self.assertEqual(s["reason"], "did_not_stop")


class Stopped(Fixture):
    def stopped(self, load_over, run_over=None, last=None):
        samples = [sample(t, c) for t, c in enumerate(CPU)]
        if last:
            samples[-1].update(last)
        run = run_json(**{"ss_established": "700", "established_at": "", "load_status": "130",
                          "stop_kind": "stalled", "held_at_stop": "700", **(run_over or {})})
        rows = [timeline(t, 700) for t in range(6)]
        return self.build(run=run, load_over=load_over, samples=samples, rows=rows)["stopped"]

    def test_descriptor_limit(self):
        s = self.stopped({"established": 700, "failures": {"connect_timeout": 300}},
                         last={"server_fds_max": 19995, "server_fds_limit": 20000})
        self.assertEqual(s["reason"], "descriptor_limit")
        self.assertEqual(s["evidence"]["server_fds_most_in_one_process"], 19995)
        self.assertEqual(s["evidence"]["that_process_nofile_soft"], 20000)
        self.assertEqual(s["evidence"]["established_when_stopped"], 700)

    def test_evidence_is_what_was_sampled_before_the_stop(self):
        # The sampler goes on while the load closes: its later rows must not count.
        samples = [sample(t, c) for t, c in enumerate(CPU)]
        samples[4].update(server_fds_max=19990, server_fds_limit=20000)
        samples[5].update(server_fds_max=19999, server_fds_limit=20000, server_rss_bytes=99 * MIB)
        run = run_json(ss_established="700", established_at="", load_status="130",
                       stop_kind="stalled", held_at_stop="700", stop_at=str(T0 + 5.1))
        s = self.build(run=run, load_over={"failures": {"connect_timeout": 300}},
                       samples=samples, rows=[timeline(t, 700) for t in range(6)])["stopped"]
        self.assertEqual(s["reason"], "descriptor_limit")
        self.assertEqual(s["evidence"]["sampled_at_elapsed"], 4)
        self.assertEqual(s["evidence"]["established_at_that_second"], 700)
        self.assertEqual(s["evidence"]["server_rss_bytes"], 10 * MIB)

    def test_server_exited_drops_every_connection(self):
        s = self.stopped({"established": 750, "failures": {"reset_by_server": 750}},
                         run_over={"stop_kind": "server_exited", "server_exit_status": "1",
                                   "server_log_tail": "Error: Too many open files"})
        self.assertEqual(s["reason"], "server_exited")
        self.assertEqual(s["evidence"]["exit_status"], 1)
        # The load established 750 before the exit (its timeline said 700 last).
        self.assertEqual(s["evidence"]["connections_dropped"], 750)
        self.assertIn("EMFILE", s["detail"])

    def test_a_crash_is_shown_at_its_peak(self):
        # The server gave up at t=2 and dropped its connections over the seconds after.
        samples = [sample(t, c, server_fds_max=f, server_rss_bytes=m * MIB)
                   for t, (c, f, m) in enumerate(zip(CPU, [500, 900, 1000, 600, 200, 5],
                                                     [20, 30, 40, 40, 40, 0]))]
        run = run_json(ss_established="0", established_at="", load_status="1",
                       stop_kind="server_exited", server_exit_status="1", held_at_stop="990",
                       stop_at=str(T0 + 6.5))
        rows = [timeline(t, e) for t, e in enumerate([480, 890, 990, 590, 190, 0])]
        s = self.build(run=run, load_over={"established": 990}, samples=samples, rows=rows)["stopped"]
        self.assertEqual(s["evidence"]["sampled_at_elapsed"], 2)
        self.assertEqual(s["evidence"]["server_fds_most_in_one_process"], 1000)
        self.assertEqual(s["evidence"]["established_at_that_second"], 990)
        self.assertEqual(s["evidence"]["server_rss_bytes"], 40 * MIB)

    def test_killed_by_a_signal(self):
        s = self.stopped({}, run_over={"stop_kind": "server_exited", "server_exit_status": "137"})
        self.assertEqual(s["evidence"]["killed_by_signal"], 9)

    def test_memory(self):
        s = self.stopped({"failures": {"connect_timeout": 300}},
                         last={"mem_available_bytes": 100 * MIB})
        self.assertEqual(s["reason"], "memory")

    def test_refusals(self):
        s = self.stopped({"failures": {"connect_refused": 200, "reset_by_server": 50,
                                       "handshake_timeout": 50}})
        self.assertEqual(s["reason"], "refusals")
        self.assertIn("250 of 300", s["detail"])

    def test_timeouts(self):
        s = self.stopped({"failures": {"connect_timeout": 200, "handshake_timeout": 100}})
        self.assertEqual(s["reason"], "timeouts")

    def test_counted_short(self):
        # The load held all 1000; ss, run late, counted 400 on the port.
        s = self.build(run=run_json(ss_established="400"))["stopped"]
        self.assertEqual(s["reason"], "counted_short")
        self.assertEqual(s["evidence"]["established_on_port"], 400)

    def test_unexplained(self):
        s = self.stopped({"failures": {}})
        self.assertEqual(s["reason"], "unknown")
        self.assertEqual(s["evidence"]["load_failures"], {})


if __name__ == "__main__":
    unittest.main()


class Deflate(Fixture):
    def deflate(self, window, load_over):
        over = {"deflate": True, "payload": "compressible", "warmup_bytes": 65536}
        over.update(load_over)
        r = self.build(run=run_json(deflate_window=window), load_over=over)
        return r["deflate"], scale_result.summary(r, "report.json")

    def test_takeover_offered_and_agreed_is_said(self):
        d, text = self.deflate("9", {"deflate_window": 9, "deflate_takeover": 1000})
        self.assertEqual((d["takeover_offered_bits"], d["takeover_agreed"]), (9, 1000))
        self.assertIn("context takeover of 9 bits offered, agreed both ways by 1,000"
                      " connections; server window 9", text)

    def test_shared_mode_says_no_takeover_was_offered(self):
        d, text = self.deflate("", {})
        self.assertEqual((d["takeover_offered_bits"], d["takeover_agreed"]), (None, 0))
        self.assertIn("no context takeover offered; server window shared mode", text)
