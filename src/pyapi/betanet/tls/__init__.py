"""TLS ClientHello parsing and fingerprints (JA3, JA3N, JA4), the Chrome-fingerprinted
client, Betanet access tickets and the decoy web front of an HTX listener."""
from betanet.tls.clienthello import (ClientHello, ServerHello, is_grease, parse_client_hello,
                                     parse_server_hello)
from betanet.tls.fingerprint import Fingerprints, fingerprints, ja3, ja3n, ja4

__all__ = ["ClientHello", "ServerHello", "is_grease", "parse_client_hello", "parse_server_hello",
           "Fingerprints", "fingerprints", "ja3", "ja3n", "ja4"]
