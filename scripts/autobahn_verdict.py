#!/usr/bin/env python3
"""The verdict on an Autobahn run (kosoku's reports/.../index.json): passes only when
every case of the selection ran, and each ended OK or INFORMATIONAL both in its message
exchange (`behavior`) and in its closing handshake (`behaviorClose`).

    autobahn_verdict.py INDEX_JSON [--include GLOB]... [--exclude GLOB]...

The selection is computed from kosoku's own case list (kosoku.cases.CASES) with the same
include/exclude globs the run was given, so a results file with no cases, one cut
short, or a pattern that matches nothing is a failure, not a pass. Prints the tally and
every case that is not plainly OK. Exit 0 on a pass, 1 on a failure.
"""

import argparse
import collections
import fnmatch
import json
import sys

# Anything else fails: FAILED, NON-STRICT, UNIMPLEMENTED, ERROR for the exchange; WRONG
# CODE, UNCLEAN, FAILED, FAILED BY CLIENT for the close.
ACCEPTED = {"OK", "INFORMATIONAL"}


def selection(case_ids, includes, excludes):
    """The case ids a kosoku run with these globs runs, in kosoku's order."""
    def matches(case_id, globs):
        return any(fnmatch.fnmatchcase(case_id, g) for g in globs)

    return [c for c in case_ids
            if (not includes or matches(c, includes)) and not matches(c, excludes)]


def verdict(results, expected):
    """(passed, lines to print) for `results` (case id -> entry) against `expected`."""
    lines = []
    failures = 0
    if not expected:
        return False, ["the selection holds no case: nothing was tested"]
    missing = [c for c in expected if c not in results]
    extra = sorted(set(results) - set(expected))
    if missing:
        failures += 1
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        lines.append(f"{len(missing)} of {len(expected)} selected cases did not run: {shown}")
    if extra:
        failures += 1
        lines.append(f"{len(extra)} cases ran that the selection does not hold: {', '.join(extra[:10])}")
    exchange = collections.Counter(e.get("behavior") for e in results.values())
    close = collections.Counter(e.get("behaviorClose") for e in results.values())
    lines.insert(0, f"autobahn: {len(results)} of {len(expected)} cases ran; exchange: "
                 + ", ".join(f"{n} {b}" for b, n in sorted(exchange.items(), key=str))
                 + "; close: "
                 + ", ".join(f"{n} {b}" for b, n in sorted(close.items(), key=str)))
    for case_id in expected:
        entry = results.get(case_id)
        if entry is None:
            continue
        b, bc = entry.get("behavior"), entry.get("behaviorClose")
        bad = b not in ACCEPTED or bc not in ACCEPTED
        failures += bad
        if bad or b != "OK" or bc != "OK":
            mark = "FAIL" if bad else "    "
            lines.append(f"  {mark} {case_id}: {b} / close {bc}"
                         f" (code {entry.get('remoteCloseCode')})")
    return failures == 0, lines


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index")
    parser.add_argument("--include", action="append", default=[])
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args(argv)

    from kosoku.cases import CASES  # the suite's own list, as the run saw it

    expected = selection(list(CASES), args.include, args.exclude)
    try:
        with open(args.index) as f:
            agents = json.load(f)
    except (OSError, ValueError) as e:
        print(f"autobahn: no readable results ({e})")
        return 1
    if len(agents) != 1:
        print(f"autobahn: expected the results of one server, found {len(agents)}")
        return 1
    passed, lines = verdict(next(iter(agents.values())), expected)
    print("\n".join(lines))
    print("autobahn: PASS" if passed else "autobahn: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
