"""wss:// with Python `websockets` over the standard library's ssl (OpenSSL): the server
runs with `--tls-cert/--tls-key` and a throwaway self-signed certificate made with
openssl, which the clients trust as their CA. A client that offers only TLS 1.1 is
refused (its security level lowered so that OpenSSL really sends that hello)."""

import json
import ssl
import subprocess
import urllib.request

import pytest

from conftest import Server, client, recv


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    return d


@pytest.fixture
def tls_server(cert):
    srv = Server(["--tls-cert", str(cert / "cert.pem"), "--tls-key", str(cert / "key.pem")])
    try:
        yield srv
        srv.assert_running()
    finally:
        srv.stop()


def context(cert, **kw):
    ctx = ssl.create_default_context(cafile=str(cert / "cert.pem"))
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_text_and_binary_echo_over_wss(cert, tls_server, version):
    ctx = context(cert, minimum_version=version, maximum_version=version)
    with client(f"wss://localhost:{tls_server.port}/echo", ssl=ctx) as ws:
        assert ws.socket.version() == {
            ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        ws.send("héllo over TLS ✓")
        assert recv(ws) == "héllo over TLS ✓"
        payload = bytes(range(256)) * 1000
        ws.send(payload)
        assert recv(ws, "the binary echo") == payload


def test_https_serves_stats(cert, tls_server):
    with urllib.request.urlopen(f"https://localhost:{tls_server.port}/stats", timeout=10,
                                context=context(cert)) as resp:
        assert json.load(resp)["accepted_total"] >= 1


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_a_tls11_only_client_is_refused(cert, tls_server):
    ctx = context(cert, minimum_version=ssl.TLSVersion.TLSv1_1,
                  maximum_version=ssl.TLSVersion.TLSv1_1)
    # OpenSSL's default security level forbids TLS 1.1 before any hello is sent; level 0
    # lets it send one, so the refusal below is the server's.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        with client(f"wss://localhost:{tls_server.port}/echo", ssl=ctx):
            pass
    assert "alert" in str(refused.value).lower() or "version" in str(refused.value).lower(), refused.value
    tls_server.assert_running()
    failures = None
    with urllib.request.urlopen(f"https://localhost:{tls_server.port}/stats", timeout=10,
                                context=context(cert)) as resp:
        failures = json.load(resp)["handshake_failures"]
    assert failures.get("tls_version") == 1, failures
