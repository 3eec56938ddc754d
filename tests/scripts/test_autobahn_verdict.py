"""scripts/autobahn_verdict.py must fail every results file that does not prove the
selection passed: a wrong close code, an unclean close, too few cases, no cases, a
selection that matches nothing. scripts/autobahn.sh runs this before the suite (with
kosoku's venv, since the verdict reads kosoku's case list).

    python -m unittest tests/scripts/test_autobahn_verdict.py
"""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
import autobahn_verdict  # noqa: E402

from kosoku.cases import CASES  # noqa: E402

PLAIN = ["12.*", "13.*"]


def ok(case_id):
    return {"behavior": "OK", "behaviorClose": "OK", "remoteCloseCode": 1000,
            "duration": 1, "reportfile": f"case_{case_id}.json"}


class Verdict(unittest.TestCase):
    def run_verdict(self, results, *args):
        """Exit status of the script's main on `results` written as kosoku writes it."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "index.json")
            with open(path, "w") as f:
                json.dump({"wsreactor": results}, f)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                status = autobahn_verdict.main([path, *args])
            return status, out.getvalue()

    def plain_selection(self):
        return autobahn_verdict.selection(list(CASES), [], PLAIN)

    def plain_args(self):
        return [a for g in PLAIN for a in ("--exclude", g)]

    def test_the_selection_comes_from_kosokus_list(self):
        self.assertEqual(len(CASES), 517)
        self.assertEqual(len(self.plain_selection()), 301)
        self.assertEqual(len(autobahn_verdict.selection(list(CASES), ["1.*"], [])), 16)
        # "1.*" is not "10.*".
        self.assertNotIn("10.1.1", autobahn_verdict.selection(list(CASES), ["1.*"], []))

    def test_a_whole_passing_run_passes(self):
        results = {c: ok(c) for c in self.plain_selection()}
        results["6.4.1"]["behavior"] = "INFORMATIONAL"
        status, out = self.run_verdict(results, *self.plain_args())
        self.assertEqual(status, 0, out)
        self.assertIn("6.4.1: INFORMATIONAL", out)

    def test_a_wrong_close_code_fails(self):
        results = {c: ok(c) for c in self.plain_selection()}
        results["7.9.1"].update(behaviorClose="WRONG CODE", remoteCloseCode=1000)
        status, out = self.run_verdict(results, *self.plain_args())
        self.assertEqual(status, 1, out)
        self.assertIn("FAIL 7.9.1: OK / close WRONG CODE", out)

    def test_every_bad_close_and_exchange_verdict_fails(self):
        for field, value in [("behaviorClose", "UNCLEAN"), ("behaviorClose", "FAILED"),
                             ("behaviorClose", "FAILED BY CLIENT"),
                             ("behavior", "FAILED"), ("behavior", "NON-STRICT"),
                             ("behavior", "UNIMPLEMENTED"), ("behavior", "ERROR")]:
            with self.subTest(field=field, value=value):
                results = {c: ok(c) for c in self.plain_selection()}
                results["5.1"][field] = value
                status, out = self.run_verdict(results, *self.plain_args())
                self.assertEqual(status, 1, out)

    def test_too_few_cases_fail(self):
        results = {c: ok(c) for c in self.plain_selection()[:-1]}
        status, out = self.run_verdict(results, *self.plain_args())
        self.assertEqual(status, 1, out)
        self.assertIn("1 of 301 selected cases did not run: 10.1.1", out)

    def test_no_cases_fail(self):
        status, out = self.run_verdict({}, *self.plain_args())
        self.assertEqual(status, 1, out)

    def test_a_selection_that_matches_nothing_fails(self):
        status, out = self.run_verdict({}, "--include", "99.*")
        self.assertEqual(status, 1, out)
        self.assertIn("nothing was tested", out)

    def test_cases_outside_the_selection_fail(self):
        results = {c: ok(c) for c in self.plain_selection()}
        results["12.1.1"] = ok("12.1.1")
        status, out = self.run_verdict(results, *self.plain_args())
        self.assertEqual(status, 1, out)

    def test_an_unreadable_results_file_fails(self):
        with contextlib.redirect_stdout(io.StringIO()):
            status = autobahn_verdict.main(["/nonexistent/index.json"])
        self.assertEqual(status, 1)


if __name__ == "__main__":
    unittest.main()
