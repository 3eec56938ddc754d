"""scripts/scale_compare.py must put each run's figures in its own column: a run that
held everything says it did not stop, a server that exited says so with the connections
it dropped and its RSS per connection from its last sample, and no figure it lacks is
shown as a number. scripts/scale.sh runs this before every run.

    python3 -m unittest tests/scripts/test_scale_compare.py
"""

import copy
import json
import os
import sys
import unittest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import scale_compare  # noqa: E402

with open(os.path.join(ROOT, "tests", "clients", "fixtures", "scale-70000.json")) as f:
    HELD = json.load(f)


def crashed():
    """The fixture as a peer that exited at its descriptor limit."""
    r = copy.deepcopy(HELD)
    r["server"].update(name="peer-x", command="peer-x --listen 127.0.0.1:{PORT}",
                       rss_bytes_before=2 * 2**20, rss_bytes_per_connection=None)
    r["os"].update(established_on_port=0, kernel_slab_growth_bytes_per_socket=None)
    r["hold_cpu"] = dict.fromkeys(r["hold_cpu"])
    r["load"]["hold_echo_rtt_us"] = {"count": 0}
    r["stopped"] = {"reason": "server_exited",
                    "detail": "the server exited (status 1) holding 19,900 connections, all dropped with it",
                    "evidence": {"connections_dropped": 19900, "sampled_at_elapsed": 3,
                                 "established_at_that_second": 10000,
                                 "server_rss_bytes": 2 * 2**20 + 10000 * 5000}}
    return r


class Compare(unittest.TestCase):
    def setUp(self):
        self.page = scale_compare.render([HELD, crashed()])
        self.rows = [scale_compare.rows(HELD), scale_compare.rows(crashed())]

    def cell(self, run, label):
        return next((v, n) for k, v, n in self.rows[run] if k == label)

    def test_one_column_per_run(self):
        self.assertIn("<th>wsreactor</th>", self.page)
        self.assertIn("<th>peer-x</th>", self.page)

    def test_why_each_stopped(self):
        self.assertEqual(self.cell(0, "stopped")[0], "did not stop")
        self.assertEqual(self.cell(1, "stopped")[0], "server exited")
        self.assertIn("all dropped with it", self.cell(1, "stopped")[1])

    def test_rss_of_a_server_that_exited_is_from_its_last_sample(self):
        self.assertEqual(self.cell(1, "server RSS per connection")[0], "5,000.0 B")
        per = HELD["server"]["rss_bytes_per_connection"]
        self.assertEqual(self.cell(0, "server RSS per connection")[0], f"{per:,.1f} B")

    def test_cpu_per_echo_and_per_handshake(self):
        h = HELD["hold_cpu"]
        self.assertTrue(self.cell(0, "server CPU per echo")[0].startswith(f"{h['server_us_per_echo']:,.1f} µs"))
        self.assertEqual(self.cell(1, "server CPU per echo")[0], "n/a")
        r = HELD["ramp_cpu"]
        self.assertIn(f"user {r['load_user_us_per_connection']:,.1f}", self.cell(0, "load CPU per handshake")[0])

    def test_no_figure_it_lacks_reads_as_a_number(self):
        self.assertNotIn("n/a B", self.page)
        self.assertNotIn("None", self.page)


if __name__ == "__main__":
    unittest.main()
