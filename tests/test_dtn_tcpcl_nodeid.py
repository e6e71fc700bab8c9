"""TCPCLv4 Node ID authentication from the peer certificate (RFC 9174 §4.4.1, §4.4.4.3):
real certificates made here with `cryptography` (a CA, NODE-ID SANs as id-on-bundleEID
otherNames or legacy URIs), sessions over real TLS sockets, and the sans-IO check with
the exact SESS_TERM reason."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from betanet.dtn.tcpcl.aio import (SessionClosedError, client_context, open_session, serve,
                                   server_context)
from betanet.dtn.tcpcl.certs import certificate_node_ids, node_id_other_name
from betanet.dtn.tcpcl.events import MessageType, SessionClosed, SessTermReason
from betanet.dtn.tcpcl.protocol import Session, SessionConfig, State, contact_header
from betanet.errors import InvalidArgumentError, MalformedError


# ---- certificates ---------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    def __init__(self, tmp):
        self.tmp = tmp
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name("test CA"))
                     .issuer_name(_name("test CA")).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.path = tmp / "ca.pem"
        self.path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, sans: list) -> tuple[str, str, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(self.cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30)))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = b.sign(self.key, hashes.SHA256())
        cp, kp = self.tmp / f"{name}.pem", self.tmp / f"{name}.key"
        cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        return str(cp), str(kp), cert


HOST = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("tcpcl-nodeid"))
    return {
        "ca": str(ca.path), "issuer": ca,
        "server": ca.issue("server", HOST + [node_id_other_name("ipn:2.0")]),
        "server_uri": ca.issue("server_uri", HOST + [x509.UniformResourceIdentifier("ipn:2.0")]),
        "server_none": ca.issue("server_none", HOST),
        "client": ca.issue("client", [node_id_other_name("ipn:1.0")]),
    }


def test_node_ids_read_from_certificates(pki):
    der = lambda c: c.public_bytes(serialization.Encoding.DER)  # noqa: E731
    assert certificate_node_ids(der(pki["server"][2])) == ("ipn:2.0",)
    assert certificate_node_ids(der(pki["server_uri"][2])) == ("ipn:2.0",)
    assert certificate_node_ids(der(pki["server_none"][2])) == ()
    long_id = "dtn://" + "n" * 300 + "/"
    name = node_id_other_name(long_id)
    assert name.value[:4] == b"\x16\x82\x01\x33"  # DER long form: 307 bytes
    assert certificate_node_ids(der(pki["issuer"].issue("long", [name])[2])) == (long_id,)


def test_bad_id_on_bundle_eid_value_is_malformed(pki):
    bad = x509.OtherName(node_id_other_name("x").type_id, b"\x0c\x01x")  # UTF8String, not IA5
    cert = pki["issuer"].issue("bad", [bad])[2]
    with pytest.raises(MalformedError):
        certificate_node_ids(cert.public_bytes(serialization.Encoding.DER))


# ---- sans-IO: the exact reason on the wire --------------------------------------------------

def _passive_after_tls(policy: str, cert_ids):
    b = Session(active=False, config=SessionConfig(node_id="ipn:2.0", can_tls=True,
                                                    node_id_policy=policy))
    b.receive_data(contact_header(True), 0)
    b.data_to_send()
    assert b.state is State.TLS
    b.tls_established(0, cert_ids)
    return b


def _sess_init(node: bytes) -> bytes:
    import struct
    return bytes([7]) + struct.pack("!HQQH", 30, 1 << 20, 1 << 24, len(node)) + node + bytes(4)


@pytest.mark.parametrize("policy, cert_ids, claim, ok", [
    ("prefer", ("ipn:1.0",), b"ipn:1.0", True),
    ("prefer", ("ipn:1.0",), b"ipn:9.0", False),     # certificate names another node
    ("prefer", (), b"ipn:9.0", True),                # no NODE-ID: accepted, unauthenticated
    ("prefer", None, b"ipn:9.0", True),              # certificate not validated
    ("require", (), b"ipn:1.0", False),
    ("require", None, b"ipn:1.0", False),
    ("require", ("ipn:5.0", "ipn:1.0"), b"ipn:1.0", True),
    ("none", ("ipn:1.0",), b"ipn:9.0", True),
])
def test_sess_init_checked_against_certificate(policy, cert_ids, claim, ok):
    b = _passive_after_tls(policy, cert_ids)
    ev = b.receive_data(_sess_init(claim), 0)
    out = b.data_to_send()
    if ok:
        assert b.established and out[0] == MessageType.SESS_INIT
        assert b.peer_node_id_authenticated == (bool(cert_ids) and policy != "none")
    else:
        assert b.closed and not b.peer_node_id_authenticated
        assert out == bytes([MessageType.SESS_TERM, 0, SessTermReason.CONTACT_FAILURE])
        assert any(isinstance(e, SessionClosed) for e in ev)


def test_require_without_tls_fails_and_bad_policy_is_refused():
    b = Session(active=False, config=SessionConfig(node_id="ipn:2.0", node_id_policy="require"))
    b.receive_data(contact_header(False), 0)
    b.data_to_send()
    b.receive_data(_sess_init(b"ipn:1.0"), 0)
    assert b.closed and b.data_to_send()[-1] == SessTermReason.CONTACT_FAILURE
    with pytest.raises(InvalidArgumentError):
        SessionConfig(node_id_policy="sometimes")


# ---- over real TLS sockets -------------------------------------------------------------------

def run(coro, timeout=30):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def _contexts(pki, server="server"):
    cert, key, _ = pki[server]
    ccert, ckey, _ = pki["client"]
    return (server_context(cert, key, cafile=pki["ca"]),
            client_context(cafile=pki["ca"], certfile=ccert, keyfile=ckey))


@pytest.mark.parametrize("server", ["server", "server_uri"])
def test_matching_node_ids_authenticate_both_sides(pki, server):
    async def main():
        seen = []

        async def handler(conn):
            seen.append(conn)

        sctx, cctx = _contexts(pki, server)
        srv = await serve("127.0.0.1", 0, ssl=sctx, handler=handler,
                          config=SessionConfig(node_id="ipn:2.0", node_id_policy="require"))
        conn = await open_session("127.0.0.1", srv.port, ssl=cctx, server_hostname="localhost",
                                  config=SessionConfig(node_id="ipn:1.0", node_id_policy="require"))
        await conn.send_bundle(b"authenticated")
        assert conn.tls and conn.peer_node_id == "ipn:2.0" and conn.peer_node_id_authenticated
        assert seen[0].peer_node_id == "ipn:1.0" and seen[0].peer_node_id_authenticated
        await conn.close()
        await srv.close()
    run(main())


def test_claim_that_the_certificate_does_not_name_fails_the_session(pki):
    """The client's certificate names ipn:1.0 but its SESS_INIT claims ipn:7.0: the server
    ends the session with SESS_TERM Contact Failure (reason 4)."""
    async def main():
        sctx, cctx = _contexts(pki)
        srv = await serve("127.0.0.1", 0, ssl=sctx, config=SessionConfig(node_id="ipn:2.0"))
        with pytest.raises(SessionClosedError, match=r"reason 4"):
            await open_session("127.0.0.1", srv.port, ssl=cctx, server_hostname="localhost",
                               config=SessionConfig(node_id="ipn:7.0"), timeout=10)
        await srv.close()
    run(main())


def test_server_without_node_id_refused_only_when_required(pki):
    async def main():
        sctx, cctx = _contexts(pki, "server_none")
        srv = await serve("127.0.0.1", 0, ssl=sctx, config=SessionConfig(node_id="ipn:2.0"))
        conn = await open_session("127.0.0.1", srv.port, ssl=cctx, server_hostname="localhost",
                                  config=SessionConfig(node_id="ipn:1.0"))  # prefer
        assert conn.peer_node_id == "ipn:2.0" and not conn.peer_node_id_authenticated
        await conn.close()
        with pytest.raises(SessionClosedError, match="no NODE-ID"):
            await open_session("127.0.0.1", srv.port, ssl=cctx, server_hostname="localhost",
                               config=SessionConfig(node_id="ipn:1.0", node_id_policy="require"),
                               timeout=10)
        await srv.close()
    run(main())
