"""Interop with Python `websockets` (an implementation no one here wrote) against the real
binary: text, binary, a 1 MiB message, ping/pong, the closing handshake with a code and
a reason, and a chat room. Every test runs twice: against a plain server (which declines
the client's permessage-deflate offer) and against `serve --deflate` (which accepts it:
websockets then compresses every message it sends)."""

import os
import random
import string

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from conftest import IO_TIMEOUT, Server, client, recv, unique


@pytest.fixture(params=["plain", "deflate"])
def server(request):
    srv = Server(["--deflate"] if request.param == "deflate" else [])
    srv.deflate = request.param == "deflate"
    try:
        yield srv
        srv.assert_running()
    finally:
        srv.stop()


def test_permessage_deflate_is_negotiated_only_with_deflate(server):
    with client(server.url()) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
        if server.deflate:
            # RFC 7692 §7.1: the server adds no context takeover in both directions.
            assert agreed == (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            )
        else:
            assert agreed is None
        ws.send("negotiated")
        assert recv(ws, "echo") == "negotiated"


def test_text_is_echoed(server):
    with client(server.url()) as ws:
        for text in ["hello", "κόσμε", "a€b𝄞c 🦀", ""]:
            ws.send(text)
            got = recv(ws, f"echo of {text!r}")
            assert isinstance(got, str), f"text came back as {type(got).__name__}"
            assert got == text


def test_binary_is_echoed(server):
    with client(server.url()) as ws:
        for payload in [bytes(range(256)), b"", os.urandom(70_000)]:
            ws.send(payload)
            got = recv(ws, f"echo of {len(payload)} bytes")
            assert isinstance(got, bytes), f"binary came back as {type(got).__name__}"
            assert got == payload


def test_one_mebibyte_messages_are_echoed_byte_for_byte(server):
    with client(server.url()) as ws:
        payload = os.urandom(1 << 20)
        ws.send(payload)
        got = recv(ws, "1 MiB binary echo", timeout=60)
        assert len(got) == len(payload)
        assert got == payload, "the 1 MiB binary echo differs"

        # Text of exactly 1 MiB, multi-byte code points included.
        unit = "κόσμε 🦀 ascii "
        text = unit * ((1 << 20) // len(unit.encode()))
        text += "x" * ((1 << 20) - len(text.encode()))
        assert len(text.encode()) == 1 << 20
        ws.send(text)
        got = recv(ws, "1 MiB text echo", timeout=60)
        assert got == text, "the 1 MiB text echo differs"


def test_ping_gets_a_pong_with_the_same_payload(server):
    with client(server.url(), ping_interval=None) as ws:
        # websockets acknowledges a ping only when a pong with the same payload (or the
        # payload of a later ping) arrives; with one ping in flight, the event means
        # exactly "a pong carrying this payload came back".
        payload = unique("ping").encode()
        pong = ws.ping(payload)
        assert pong.wait(IO_TIMEOUT), "no pong with the ping's payload"
        # The connection still echoes after the control frames.
        ws.send("after ping")
        assert recv(ws, "echo after the ping") == "after ping"


@pytest.mark.parametrize("code, reason", [(1000, "bye"), (4001, "application-defined: κόσμε")])
def test_close_with_code_and_reason(server, code, reason):
    with client(server.url()) as ws:
        ws.send("before close")
        assert recv(ws, "echo before closing") == "before close"
        ws.close(code=code, reason=reason)
        # After the closing handshake, recv reports how it went: the frame we sent and the
        # one we received (None if the server had sent no Close frame).
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=IO_TIMEOUT)
    assert closed.value.sent == Close(code, reason)
    received = closed.value.rcvd
    assert received is not None, "the server sent no Close frame"
    # RFC 6455 §5.5.1: the reply "typically echos the status code it received". Its
    # reason is the server's own and may be any UTF-8 (websockets fails the connection
    # on an invalid one), so only the code is compared.
    assert received.code == code
    assert closed.value.rcvd_then_sent is False, "we closed first; theirs must be the reply"


def test_chat_room_members_all_get_a_message(server):
    room = unique("room")
    with client(server.url(f"/chat?room={room}")) as a, client(
        server.url(f"/chat?room={room}")
    ) as b, client(server.url(f"/chat?room={unique('other')}")) as other:
        message = unique("hello from a")
        a.send(message)
        assert recv(b, "message in another member of the room") == message
        assert recv(a, "message back in the sender (a member too)") == message
        # A client in another room must not get it: its own message must be the first
        # thing it receives (delivery to every member happens before b's recv returns).
        mine = unique("other room")
        other.send(mine)
        assert recv(other, "other room's own message") == mine


@pytest.mark.parametrize("bits", [8, 9, 12, 15])
def test_a_smaller_server_window_is_agreed_and_honoured(bits):
    """Against the release binary: a client that asks for server_max_window_bits gets it
    and can inflate the echoes with that window (8 bits, which zlib's raw deflate lacks,
    is served with stored blocks; a release build once panicked there)."""
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    srv = Server(["--deflate"])
    try:
        offer = ClientPerMessageDeflateFactory(server_max_window_bits=bits, client_max_window_bits=True)
        with client(srv.url(), extensions=[offer], compression=None) as ws:
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert agreed.endswith(f"; server_max_window_bits={bits}"), agreed
            text = "abcdefghij κόσμε " * 5000
            ws.send(text)
            assert recv(ws, "the echo") == text
        srv.assert_running()
    finally:
        srv.stop()


def chatter(i):
    """Varied text in which each message repeats much of the ones before: compressed
    against the wrong context, it does not come back as it was sent."""
    line = f'{{"seq":{i},"user":"user-{i % 7}","text":"the quick brown fox {i * 31 % 101} jumps κόσμε"}}'
    return line * (1 + i % 4)


# Each offer shape, and what `serve --deflate-window W` answers to it (RFC 7692 §7.1).
TAKEOVER_OFFERS = {
    # websockets' default offer: client_max_window_bits without a value.
    "default": (
        None,
        "permessage-deflate; server_max_window_bits={w}; client_max_window_bits={w}",
    ),
    # No client_max_window_bits: the server cannot bound the client's window, so it
    # asks the client to keep no context (§7.1.1.1, §7.1.2.2).
    "without client_max_window_bits": (
        dict(client_max_window_bits=None),
        "permessage-deflate; client_no_context_takeover; server_max_window_bits={w}",
    ),
    "with smaller windows": (
        dict(server_max_window_bits=9, client_max_window_bits=10),
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits={c}",
    ),
}


@pytest.mark.parametrize("offer", TAKEOVER_OFFERS)
@pytest.mark.parametrize("window", [9, 15])
def test_context_takeover_echoes_a_long_session(window, offer):
    """`serve --deflate-window W` keeps the context both ways where the offer allows: the
    client's messages then refer to the ones before, and so do the echoes, which
    websockets inflates with its own kept stream. Hundreds of messages repeating each
    other's text, then large text and binary, in one session."""
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    params, expected = TAKEOVER_OFFERS[offer]
    srv = Server(["--deflate-window", str(window)])
    try:
        options = {}
        if params is not None:
            options = dict(extensions=[ClientPerMessageDeflateFactory(**params)], compression=None)
        with client(srv.url(), **options) as ws:
            agreed = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert agreed == expected.format(w=window, c=min(10, window))
            # Two blocks of random letters in turn: each repeats the one 600 bytes back,
            # which a 10-bit window reaches and a 9-bit one does not (zlib, which
            # websockets uses, refuses a distance past its window).
            blocks = ["".join(random.choice(string.ascii_letters) for _ in range(300)) for _ in range(2)]
            for i in range(20):
                ws.send(blocks[i % 2])
                assert recv(ws, f"block echo {i}") == blocks[i % 2], f"block echo {i} differs"
            for i in range(400):
                ws.send(chatter(i))
                assert recv(ws, f"echo {i}") == chatter(i), f"echo {i} differs"
            big = "".join(chatter(i) for i in range(2000))
            ws.send(big)
            assert recv(ws, "the large echo", timeout=60) == big
            payload = os.urandom(100_000)
            ws.send(payload)
            assert recv(ws, "the binary echo") == payload
            ws.send(chatter(7))
            assert recv(ws, "the echo after them") == chatter(7)
        srv.assert_running()
    finally:
        srv.stop()


def test_context_takeover_chat_members_read_each_other():
    """With --deflate-window, a member's message refers to its own context: the room
    inflates it and sends it on to the others (uncompressed, or compressed after each
    receiver's context), and each still reads every message as sent."""
    srv = Server(["--deflate-window", "9"])
    try:
        room = unique("room")
        with client(srv.url(f"/chat?room={room}")) as a, client(srv.url(f"/chat?room={room}")) as b:
            for i in range(200):
                sender, other = (a, b) if i % 3 else (b, a)
                sender.send(chatter(i))
                assert recv(other, f"message {i} in the other member") == chatter(i)
                assert recv(sender, f"message {i} back in its sender") == chatter(i)
        srv.assert_running()
    finally:
        srv.stop()
