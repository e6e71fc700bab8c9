"""Origin calibration (Betanet 1.1 §5.1) for htx-web clients: after curl_cffi's TLS handshake
and before any request byte (so before the access ticket leaves), check what the origin
presented — TLS version, ALPN, certificate chain — against what the client expects, and fail
closed. The check runs in curl's pre-request callback (``CURLOPT_PREREQFUNCTION``, called
once the connection is up, before the WebSocket upgrade request is sent); returning
``CURL_PREREQFUNC_ABORT`` ends the transfer with nothing sent.

Where each fact comes from (docs/stealth.md, "Origin calibration"): curl exports no SSL
symbols and ``CURLINFO_TLS_SSL_PTR`` is an opaque ``SSL*`` here, so the negotiated TLS
version and cipher are read from curl's own informational text ("SSL connection using
TLSv1.3 / ..."), the ALPN from its text ("ALPN: server accepted ...") and cross-checked
with ``CURLINFO_HTTP_VERSION``, and the chain from ``CURLINFO_CERTINFO`` (every certificate
the server sent, as PEM). A line missing from curl's text is a mismatch, never a pass.
"""
from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass, field

from betanet.errors import AuthenticationError, InvalidArgumentError

__all__ = ["OriginExpectation", "OriginObservation", "OriginRecorder", "OriginGate", "check_origin",
           "chain_sha256"]

TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
_CURLINFO_TEXT = 0
_MAX_LINES = 256                     # curl's text before the upgrade is a few dozen lines
_TLS_LINE = re.compile(rb"^SSL connection using (TLSv1\.[0-3]) / (\S+)")
_ALPN_LINE = re.compile(rb"^ALPN: server accepted (\S+)")
_NO_ALPN_LINE = re.compile(rb"^ALPN: server did not agree")
_REUSE_LINE = re.compile(rb"^SSL reusing session")               # curl offers a cached session
_CERT_MSG_LINE = re.compile(rb"^TLSv1\.[23] \(IN\), TLS handshake, Certificate \(11\)")
_HTTP_VERSION = {"http/1.1": 2, "h2": 3}          # CURLINFO_HTTP_VERSION values (CURL_HTTP_VERSION_*)


def chain_sha256(pems: list[str | bytes]) -> tuple[str, ...]:
    """SHA-256 (hex) of each certificate's DER, in the order given (leaf first)."""
    return tuple(hashlib.sha256(ssl.PEM_cert_to_DER_cert(p if isinstance(p, str) else p.decode())).hexdigest()
                 for p in pems)


@dataclass(frozen=True)
class OriginExpectation:
    """What the client expects of an origin. ``tls_versions``: accepted negotiated versions
    (Chrome offers 1.2 and 1.3; a current HTTPS origin picks 1.3); ``alpn``: the protocol the
    origin must select for a WebSocket (``None``: it must select none); ``chain_sha256``:
    when given, the exact chain the origin must present (hex SHA-256 of each DER
    certificate, leaf first, e.g. ``chain_sha256([open(cert).read()])``)."""
    tls_versions: tuple[str, ...] = ("TLSv1.3",)
    alpn: str | None = "http/1.1"
    chain_sha256: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.tls_versions or any(v not in TLS_VERSIONS for v in self.tls_versions):
            raise InvalidArgumentError(f"origin: tls_versions must be some of {TLS_VERSIONS}")
        if self.alpn is not None and self.alpn not in _HTTP_VERSION:
            raise InvalidArgumentError(f"origin: alpn must be one of {tuple(_HTTP_VERSION)} or None")
        if self.chain_sha256 is not None and (not self.chain_sha256 or any(
                not re.fullmatch(r"[0-9a-f]{64}", h) for h in self.chain_sha256)):
            raise InvalidArgumentError("origin: chain_sha256 is a non-empty tuple of 64 hex digits each")


@dataclass
class OriginObservation:
    """What the origin presented, as curl reported it."""
    tls_version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    alpn_seen: bool = False          # curl said whether the server agreed on a protocol
    http_version: int | None = 0     # None: before any response (the pre-request check)
    chain_sha256: tuple[str, ...] = ()
    offered_resumption: bool = False # curl offered a cached session (PSK) in the ClientHello
    resumed: bool = False            # ... and the server took it (no Certificate message came)


class OriginRecorder:
    """curl's DEBUGFUNCTION during the handshake: keeps its informational lines (bounded)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def __call__(self, type_: int, data: bytes) -> None:
        if type_ == _CURLINFO_TEXT and len(self.lines) < _MAX_LINES:
            self.lines.append(bytes(data[:512]))

    def observe(self, curl, *, after_response: bool = True) -> OriginObservation:
        """What curl reported; before a response (``after_response=False``) there is no
        HTTP version yet, and the ALPN comes from curl's text alone."""
        from curl_cffi.const import CurlInfo
        http_version = int(curl.getinfo(CurlInfo.HTTP_VERSION) or 0) if after_response else None
        obs = OriginObservation(http_version=http_version, chain_sha256=chain_sha256(_certinfo_pems(curl)))
        cert_msg = False
        for line in self.lines:
            if _REUSE_LINE.match(line):
                obs.offered_resumption = True
            elif _CERT_MSG_LINE.match(line):
                cert_msg = True
            elif m := _TLS_LINE.match(line):
                obs.tls_version, obs.cipher = m.group(1).decode(), m.group(2).decode()
            elif m := _ALPN_LINE.match(line):
                obs.alpn, obs.alpn_seen = m.group(1).decode(), True
            elif _NO_ALPN_LINE.match(line):
                obs.alpn, obs.alpn_seen = None, True
        obs.resumed = obs.offered_resumption and not cert_msg
        return obs


def _certinfo_pems(curl) -> list[str]:
    """CURLINFO_CERTINFO (``struct curl_certinfo { int num_of_certs; struct curl_slist
    **certinfo; }``; curl_cffi's getinfo reads it as a plain list, so it is read here)."""
    from curl_cffi._wrapper import ffi, lib
    from curl_cffi.const import CurlInfo
    if curl._curl is None:
        return []
    out = ffi.new("void **")
    if lib.curl_easy_getinfo(curl._curl, CurlInfo.CERTINFO, out) != 0 or out[0] == ffi.NULL:
        return []
    n = ffi.cast("int *", out[0])[0]
    lists = ffi.cast("struct curl_slist ***", ffi.cast("char *", out[0]) + ffi.sizeof("void *"))[0]
    pems = []
    for i in range(max(0, min(n, 16))):
        node = lists[i]
        while node != ffi.NULL:            # curl owns these lists: walk, never free
            text = ffi.string(node.data).decode("latin-1")
            if text.startswith("Cert:"):
                pems.append(text[len("Cert:"):])
            node = node.next
    return pems


def check_origin(expect: OriginExpectation, obs: OriginObservation) -> None:
    """AuthenticationError naming the first mismatch (fail closed)."""
    def fail(what: str) -> None:
        raise AuthenticationError(f"htx-web: origin calibration failed: {what}; no request was sent")
    if obs.tls_version not in expect.tls_versions:
        fail(f"TLS version {obs.tls_version or 'not reported'}, expected {' or '.join(expect.tls_versions)}")
    if not obs.alpn_seen:
        fail("curl did not report the ALPN outcome")
    if obs.alpn != expect.alpn:
        fail(f"ALPN {obs.alpn or 'none'}, expected {expect.alpn or 'none'}")
    if expect.alpn is not None and obs.http_version is not None and obs.http_version != _HTTP_VERSION[expect.alpn]:
        fail(f"HTTP version {obs.http_version} does not match ALPN {expect.alpn}")
    if expect.chain_sha256 is not None and obs.chain_sha256 != expect.chain_sha256:
        fail(f"certificate chain of {len(obs.chain_sha256)} certificate(s) is not the expected one")


_PREREQ_OK, _PREREQ_ABORT = 0, 1          # CURL_PREREQFUNC_OK / CURL_PREREQFUNC_ABORT


class OriginGate:
    """Installs origin calibration on a curl handle: curl's text during the handshake
    (VERBOSE + DEBUGFUNCTION), CERTINFO, and the pre-request callback that checks the
    expectation after the TLS handshake and aborts before the request (and its ticket) is
    sent. ``failure`` holds the AuthenticationError of a refused origin; any error inside
    the callback aborts too (fail closed)."""

    def __init__(self, expect: OriginExpectation) -> None:
        self.expect = expect
        self.recorder = OriginRecorder()
        self.failure: BaseException | None = None
        self.checked = False
        self.observation: OriginObservation | None = None
        self._callback = None            # kept alive while curl may call it

    def install(self, curl) -> None:
        from curl_cffi._wrapper import ffi, lib
        from curl_cffi.const import CurlOpt

        def prereq(_clientp, _ip, _local_ip, _port, _local_port) -> int:
            try:
                check_origin(self.expect, self.recorder.observe(curl, after_response=False))
            except BaseException as exc:   # noqa: BLE001 - reported by check(); never a pass
                self.failure = exc
                return _PREREQ_ABORT
            self.checked = True
            return _PREREQ_OK

        self._callback = ffi.callback("int(void *, char *, char *, int, int)", prereq,
                                      onerror=lambda *_a: _PREREQ_ABORT)
        curl.setopt(CurlOpt.VERBOSE, 1)              # curl's text names the TLS version and ALPN
        curl.setopt(CurlOpt.DEBUGFUNCTION, self.recorder)
        curl.setopt(CurlOpt.CERTINFO, 1)
        if lib._curl_easy_setopt(curl._curl, CurlOpt.PREREQFUNCTION, self._callback) != 0:
            raise AuthenticationError("htx-web: curl refused the pre-request callback; origin not checked")

    def after_upgrade(self, curl) -> None:
        """After the upgrade: the pre-request check must have run and passed; the HTTP
        version of the response is cross-checked with the ALPN."""
        from curl_cffi.const import CurlOpt
        curl.setopt(CurlOpt.VERBOSE, 0)              # no callback per WebSocket frame
        if self.failure is not None:
            raise self.failure
        if not self.checked:
            raise AuthenticationError("htx-web: origin calibration failed: the pre-request check did not run")
        self.observation = self.recorder.observe(curl)
        check_origin(self.expect, self.observation)
