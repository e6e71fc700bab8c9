"""ClientHello parser and JA3/JA3N/JA4: published examples, an independent implementation
(ja4plus for JA4, Salesforce's pyja3 for JA3), the CLI, and a bounded fuzz run."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from betanet.errors import MalformedError
from betanet.tls import clienthello as chm
from betanet.tls.clienthello import hello_bytes_needed, parse_client_hello, parse_server_hello
from betanet.tls.fingerprint import _md5, fingerprints, ja4, ja4_from_raw
from stealth_helpers import capture_curl, capture_python_ssl

# Published pairs (JA4_r -> JA4, JA4_ro -> JA4_o, JA3 text -> hash), real Chrome captured by
# tls.browserleaks.com (curl_cffi issue #529, Chrome 135 on macOS; same values for 142-149).
CHROME_JA4_R = ("t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_"
                "0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,44cd,fe0d,ff01_"
                "0403,0804,0401,0503,0805,0501,0806,0601")
CHROME_JA4 = "t13d1516h2_8daaf6152771_d8a2da3f94cd"
CHROME_JA4_RO = ("t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_"
                 "0000,001b,0012,0010,000b,000d,44cd,0005,002b,000a,0033,ff01,002d,fe0d,0023,0017_"
                 "0403,0804,0401,0503,0805,0501,0806,0601")
CHROME_JA4_O = "t13d1516h2_acb858a92679_f4ae33dbe694"
CHROME_JA3N_TEXT = ("771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
                    "0-5-10-11-13-16-18-23-27-35-43-45-51-17613-65037-65281,4588-29-23-24,0")
CHROME_JA3N = "8e19337e7524d2573be54efb2b0784c9"
# Salesforce ja3 README example.
SALESFORCE_JA3_TEXT = "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
SALESFORCE_JA3 = "ada70206e40642a3e4461f35503241d5"


def test_published_examples_hash_as_published():
    assert ja4_from_raw(CHROME_JA4_R) == CHROME_JA4
    assert ja4_from_raw(CHROME_JA4_RO) == CHROME_JA4_O
    assert _md5(CHROME_JA3N_TEXT) == CHROME_JA3N
    assert _md5(SALESFORCE_JA3_TEXT) == SALESFORCE_JA3
    # JA4 spec: an empty list hashes to twelve zeros.
    assert ja4_from_raw("t13i000000__").endswith("_000000000000_000000000000")


@pytest.fixture(scope="module")
def hellos() -> dict[str, bytes]:
    out = {"python-ssl": capture_python_ssl(["h2", "http/1.1"]),
           "python-ssl-noalpn-nosni": capture_python_ssl(None, None)}
    for target in ("chrome142", "chrome151"):
        for kind in ("https", "ws"):
            out[f"{target}-{kind}"] = capture_curl(target, kind)
    return out


def test_chrome_hello_decodes(hellos):
    ch = parse_client_hello(hellos["chrome142-https"])
    fp = fingerprints(ch)
    assert ch.server_name == "localhost"
    assert ch.alpn == [b"h2", b"http/1.1"]
    assert 0x0304 in ch.supported_versions and any(chm.is_grease(v) for v in ch.supported_versions)
    assert [g for g, _ in ch.key_shares if not chm.is_grease(g)] == [0x11EC, 0x001D]   # X25519MLKEM768, X25519
    assert dict(ch.key_shares)[0x11EC] == 1216
    assert fp.ja4_r == CHROME_JA4_R and fp.ja4 == CHROME_JA4       # identical to real Chrome's
    assert fp.ja3n_string == CHROME_JA3N_TEXT and fp.ja3n == CHROME_JA3N
    assert fp.ja4_ro.split("_")[0] == "t13d1516h2"


def test_ja4_matches_ja4plus(hellos):
    from ja4plus.fingerprinters.ja4 import generate_ja4
    from ja4plus.utils.tls_utils import parse_tls_handshake
    for name, raw in hellos.items():
        info = parse_tls_handshake(raw)
        ch = parse_client_hello(raw)
        assert ja4(ch) == generate_ja4(info), name
        assert fingerprints(ch).ja4_o == generate_ja4(info, original_order=True), name


def _pcap(path, hellos: list[bytes]) -> None:
    from scapy.all import IP, TCP, Ether, Raw, wrpcap
    pkts = [Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000 + i, dport=443, flags="PA", seq=1000)
            / Raw(load=h) for i, h in enumerate(hellos)]
    wrpcap(str(path), pkts)


def test_ja3_matches_pyja3(hellos, tmp_path):
    import dpkt
    from ja3 import ja3 as pyja3
    names = list(hellos)
    path = tmp_path / "hellos.pcap"
    _pcap(path, [hellos[n] for n in names])
    with open(path, "rb") as f:
        theirs = pyja3.process_pcap(dpkt.pcap.Reader(f), any_port=True)
    assert len(theirs) == len(names)
    for name, r in zip(names, theirs):
        fp = fingerprints(parse_client_hello(hellos[name]))
        assert (fp.ja3_string, fp.ja3) == (r["ja3"], r["ja3_digest"]), name


def test_cli_hex_pcap_and_listen(hellos, tmp_path):
    raw = hellos["chrome151-https"]
    want = fingerprints(parse_client_hello(raw)).as_dict()
    run = [sys.executable, "-m", "betanet", "tls", "fingerprint", "--json"]
    out = subprocess.run(run + ["--hex", raw.hex()], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == want
    # bare handshake message (no record header) is accepted too
    out = subprocess.run(run + ["--hex", raw[5:].hex()], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout)["ja4"] == want["ja4"]
    path = tmp_path / "c.pcap"
    _pcap(path, [raw, hellos["python-ssl"]])
    out = subprocess.run(run + ["--pcap", str(path)], capture_output=True, text=True, timeout=60)
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["ja4"] for x in lines] == [want["ja4"], fingerprints(parse_client_hello(hellos["python-ssl"])).ja4]
    assert lines[0]["flow"] == "10.0.0.1:40000 -> 10.0.0.2:443"
    # live: a listener on an ephemeral port; the client is Python's ssl
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(run + ["--listen", f"127.0.0.1:{port}", "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stderr.readline()          # "listening on ..."
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            with pytest.raises((ssl.SSLError, OSError)):
                ctx.wrap_socket(c, server_hostname="example.com")
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    got = json.loads(stdout)
    assert got["ja4"].startswith("t13d") and got["flow"].startswith("127.0.0.1:")
    out = subprocess.run(run + ["--hex", "16030100"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "truncated" in out.stderr


def test_server_hello():
    # A TLS 1.3 ServerHello: version 0x0303, random, empty session id, TLS_AES_128_GCM_SHA256,
    # supported_versions=0x0304, key_share X25519, ALPN http/1.1.
    ext = (b"\x00\x2b\x00\x02\x03\x04" + b"\x00\x33\x00\x24\x00\x1d\x00\x20" + bytes(32)
           + b"\x00\x10\x00\x0b\x00\x09\x08http/1.1")
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + len(ext).to_bytes(2, "big") + ext
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    rec = b"\x16\x03\x03" + len(msg).to_bytes(2, "big") + msg
    sh = parse_server_hello(rec)
    assert (sh.version, sh.cipher_suite, sh.key_share_group, sh.alpn) == (0x0304, 0x1301, 0x1D, b"http/1.1")
    with pytest.raises(MalformedError):
        parse_client_hello(rec)


def test_malformed(hellos):
    raw = hellos["chrome142-https"]
    for cut in (0, 3, 5, 9, 50, len(raw) - 1):
        with pytest.raises(MalformedError):
            parse_client_hello(raw[:cut])
        assert hello_bytes_needed(raw[:cut]) == 0
    assert hello_bytes_needed(raw + b"\x17\x03\x03") == len(raw)
    with pytest.raises(MalformedError):
        hello_bytes_needed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(MalformedError):              # record larger than TLS allows
        hello_bytes_needed(b"\x16\x03\x01\xff\xff")
    with pytest.raises(MalformedError):              # handshake message larger than MAX_HELLO
        hello_bytes_needed(b"\x16\x03\x01\x00\x04\x01\x02\x00\x00")
    # duplicate extension
    ch = parse_client_hello(raw)
    body = bytearray(raw[9:])
    t0 = ch.extensions[1][0].to_bytes(2, "big")
    i = body.index(t0 + len(ch.extensions[1][1]).to_bytes(2, "big") + ch.extensions[1][1])
    j = body.index(ch.extensions[2][0].to_bytes(2, "big") + len(ch.extensions[2][1]).to_bytes(2, "big")
                   + ch.extensions[2][1])
    body[j:j + 2] = t0
    msg = b"\x01" + len(body).to_bytes(3, "big") + bytes(body)
    with pytest.raises(MalformedError, match="duplicate"):
        parse_client_hello(msg, record=False)
    assert i < j


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_parser(hellos, data):
    """Random mutations of real hellos and random bytes: MalformedError or a result, nothing else."""
    raw = bytearray(data.draw(st.sampled_from(sorted(hellos.values()))))
    for _ in range(data.draw(st.integers(0, 8))):
        if not raw:
            break
        op = data.draw(st.integers(0, 3))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == 0:
            raw[pos] = data.draw(st.integers(0, 255))
        elif op == 1:
            del raw[pos:pos + data.draw(st.integers(1, 64))]
        elif op == 2:
            raw[pos:pos] = data.draw(st.binary(max_size=64))
        else:
            raw = raw[:pos]
    for blob in (bytes(raw), data.draw(st.binary(max_size=512))):
        for record in (True, False):
            try:
                fingerprints(parse_client_hello(blob, record=record))
            except MalformedError:
                pass
            try:
                parse_server_hello(blob, record=record)
            except MalformedError:
                pass
            try:
                hello_bytes_needed(blob)
            except MalformedError:
                pass
