"""`GET /metrics` read with the Prometheus project's own Python client's text parser
(`prometheus_client.parser.text_string_to_metric_families`), from `serve --workers 2`
after real WebSocket traffic: every family is well formed, the per-worker samples add up
to the server's, and the server's numbers are the traffic this test sent, whichever
worker answers.
"""

import contextlib
import json
import time
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import IO_TIMEOUT, Server, client, recv

CLIENTS = 24
TEXTS = 5  # text messages per client, and one binary message after them
CLOSE_1000 = 8  # clients that close with 1000
CLOSE_4001 = 4  # clients that close with 4001; the rest stay open
SETTLE = 15  # seconds for the supervisor's view to show everything


@pytest.fixture
def workers():
    srv = Server(["--workers", "2", "--stats-interval", "0"])
    try:
        yield srv
        srv.assert_running()
    finally:
        srv.stop()


def get(server, path):
    """The status, content type and body of `GET path` (a plain HTTP request)."""
    try:
        with urllib.request.urlopen(f"http://{server.addr}{path}", timeout=IO_TIMEOUT) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def scrape(server):
    """`/metrics`, parsed: {family name: family}."""
    status, content_type, text = get(server, "/metrics")
    assert status == 200, text
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    return {f.name: f for f in text_string_to_metric_families(text)}, text


def value(families, name, **labels):
    """The value of the one sample of `name` with exactly these labels."""
    family = families[name.removesuffix("_total")]
    found = [s.value for s in family.samples if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {found} in {family.samples}"
    return found[0]


def traffic(server, held):
    """Sends the test's traffic, leaving some clients open in `held` (an ExitStack);
    returns the payload bytes echoed."""
    payload_bytes = 0
    for i in range(CLIENTS):
        ws = held.enter_context(client(server.url("/echo")))
        for n in range(TEXTS):
            text = f"client {i} message {n} κόσμε"
            ws.send(text)
            assert recv(ws, "an echo") == text
            payload_bytes += len(text.encode())
        data = bytes(range(256)) * 4
        ws.send(data)
        assert recv(ws, "a binary echo") == data
        payload_bytes += len(data)
        if i < CLOSE_1000:
            ws.close(1000)
        elif i < CLOSE_1000 + CLOSE_4001:
            ws.close(4001, "test")
    # One plain request for a page that does not exist: a refusal by reason.
    assert get(server, "/nope")[0] == 404
    return payload_bytes


def settled(server, open_now, messages):
    """The families once the view shows the traffic, within SETTLE seconds."""
    deadline = time.monotonic() + SETTLE
    while True:
        families, text = scrape(server)
        done = (
            value(families, "wsreactor_websockets") == open_now
            and value(families, "wsreactor_messages_in_total") == messages
            and value(families, "wsreactor_closes_total", code="1000") == CLOSE_1000
        )
        if done:
            return families, text
        if time.monotonic() > deadline:
            pytest.fail(f"/metrics never showed the traffic:\n{text}")
        time.sleep(0.2)


def test_metrics_parse_and_add_up_across_workers(workers):
    with contextlib.ExitStack() as held:
        payload_bytes = traffic(workers, held)
        messages = CLIENTS * (TEXTS + 1)
        open_now = CLIENTS - CLOSE_1000 - CLOSE_4001
        families, text = settled(workers, open_now, messages)

        # Every family is named, documented and typed; counters end in _total (the
        # parser strips that from a counter family's name and keeps it on its samples).
        assert len(families) > 20, text
        for name, family in families.items():
            assert name.startswith("wsreactor_"), name
            assert family.documentation, f"{name} has no HELP"
            assert family.type in ("counter", "gauge"), f"{name}: {family.type}"
            for sample in family.samples:
                assert sample.name.endswith("_total") == (family.type == "counter"), sample
                assert sample.value >= 0, sample
        for line in text.splitlines():
            if line.startswith("# TYPE ") and line.endswith(" counter"):
                assert line.split()[2].endswith("_total"), line

        # Per worker, summed over the workers (and the totals of exited ones), equals
        # the server's sample with the same labels, for every family.
        checked = 0
        for name, family in families.items():
            per_worker = families.get(name.replace("wsreactor_", "wsreactor_worker_", 1))
            if name.startswith("wsreactor_worker_") or per_worker is None:
                continue
            assert per_worker.type == family.type, name
            sums = defaultdict(float)
            for sample in per_worker.samples:
                labels = dict(sample.labels)
                worker = labels.pop("worker")
                assert worker in ("0", "1", "retired"), sample
                assert worker != "retired" or family.type == "counter", sample
                sums[(sample.name.replace("_worker_", "_", 1), tuple(sorted(labels.items())))] += sample.value
            server = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
            assert sums == server, f"{name}: workers {dict(sums)} vs server {server}"
            checked += 1
        assert checked >= 17, f"only {checked} families have a per-worker breakdown"

        # The numbers are this test's traffic.
        assert value(families, "wsreactor_workers") == 2
        for w in ("0", "1"):
            assert value(families, "wsreactor_worker_up", worker=w) == 1
            # 24 connections all hashed to one worker: odds of 1 in 8 million.
            assert value(families, "wsreactor_worker_accepted_total", worker=w) > 0, text
        assert value(families, "wsreactor_messages_out_total") == messages
        assert value(families, "wsreactor_handshakes_total", result="ok") == CLIENTS
        assert value(families, "wsreactor_handshakes_total", result="not_found") == 1
        assert value(families, "wsreactor_closes_total", code="4001") == CLOSE_4001
        assert value(families, "wsreactor_accepted_total") >= CLIENTS + 1
        assert value(families, "wsreactor_connections") >= open_now
        assert value(families, "wsreactor_bytes_in_total") > payload_bytes
        assert value(families, "wsreactor_bytes_out_total") > payload_bytes
        assert value(families, "wsreactor_accept_emfile_total") == 0
        assert value(families, "wsreactor_rss_bytes") > 1 << 20
        assert value(families, "wsreactor_uptime_seconds") > 0

        # /stats says the same (the fields this traffic left unchanged since).
        status, content_type, body = get(workers, "/stats")
        assert (status, content_type) == (200, "application/json"), body
        stats = json.loads(body)
        assert stats["websockets"] == open_now
        assert stats["messages_in_total"] == messages
        assert stats["closes_by_code"]["4001"] == CLOSE_4001
        assert sum(w["messages_in_total"] for w in stats["workers"]) + stats["retired"]["messages_in_total"] == messages


def test_metrics_are_the_same_whichever_worker_answers(workers):
    with contextlib.ExitStack() as held:
        traffic(workers, held)
        settled(workers, CLIENTS - CLOSE_1000 - CLOSE_4001, CLIENTS * (TEXTS + 1))
        # Fresh connections spread over both workers; each answer describes the server.
        seen = set()
        for _ in range(40):
            status, _, body = get(workers, "/stats")
            assert status == 200, body
            stats = json.loads(body)
            seen.add(stats["pid"])
            assert stats["messages_in_total"] == CLIENTS * (TEXTS + 1), stats
            families, _ = scrape(workers)
            assert value(families, "wsreactor_messages_in_total") == CLIENTS * (TEXTS + 1)
            if len(seen) == 2:
                break
        assert len(seen) == 2, "both workers answered"
