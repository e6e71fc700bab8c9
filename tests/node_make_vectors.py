"""Writes tests/vectors/node_envelope.json (run by hand; the test reproduces it byte for byte)."""
import json
import sys
from pathlib import Path

from betanet.node.envelope import ACK, Entry, frames_for, seal, seal_batch
from betanet.node.identity import Identity
from betanet.node.peers import PeerRecord


def vectors() -> dict:
    alice = Identity(bytes(range(32)), bytes(range(32, 64)))
    bob = Identity(bytes([0x42] * 32), bytes([0x43] * 32))
    sealed = seal(alice, bob.signing_public, bob.exchange_public, b"hello, betanet",
                  message_id=bytes(range(16)), seq=7, topic="chat", created_ms=1_700_000_000_000,
                  expires_ms=1_700_003_600_000, ephemeral_private=bytes([0x55] * 32))
    entries = [
        Entry(bytes(range(16)), b"hello, betanet", 7, topic="chat", created_ms=1_700_000_000_000,
              expires_ms=1_700_003_600_000),
        Entry(bytes(range(16, 32)), b"second", 8, topic="chat", created_ms=1_700_000_000_001,
              expires_ms=1_700_003_600_001),
        Entry(bytes([0xAC] * 16), bytes([0xEE] * 16) + bytes([0xEF] * 16), kind=ACK)]
    batch = seal_batch(alice, bob.signing_public, bob.exchange_public, entries,
                       ephemeral_private=bytes([0x66] * 32), version=2)
    batch3 = seal_batch(alice, bob.signing_public, bob.exchange_public, entries,
                        ephemeral_private=bytes([0x77] * 32), version=3)
    record = PeerRecord.create(alice, 3, htx_tcp=["192.0.2.1:443"], htx_quic=["192.0.2.1:443"],
                               dtn_eids=["dtn://alice/"], ble_id=bytes.fromhex("0102030405060708"))
    return {
        "alice": {"identity": (alice.signing_seed + alice.exchange_private).hex(),
                  "ed25519_public": alice.signing_public.hex(),
                  "x25519_public": alice.exchange_public.hex(),
                  "peer_id": alice.peer_id.hex(), "peer_id_text": alice.peer_id_text},
        "bob": {"identity": (bob.signing_seed + bob.exchange_private).hex(),
                "peer_id_text": bob.peer_id_text},
        "sealed": {"body": b"hello, betanet".hex(), "message_id": bytes(range(16)).hex(), "seq": 7,
                   "topic": "chat", "created_ms": 1_700_000_000_000, "expires_ms": 1_700_003_600_000,
                   "ephemeral_private": bytes([0x55] * 32).hex(), "sealed": sealed.hex(),
                   "frame": frames_for(sealed, 16384)[0].hex()},
        "peer_record": {"seq": 3, "raw": record.raw.hex()},
        "batch": {"ephemeral_private": bytes([0x66] * 32).hex(),
                  "entries": [{"message_id": bytes(range(16)).hex(), "seq": 7, "kind": 1, "topic": "chat",
                               "created_ms": 1_700_000_000_000, "expires_ms": 1_700_003_600_000,
                               "body": b"hello, betanet".hex()},
                              {"message_id": bytes(range(16, 32)).hex(), "seq": 8, "kind": 1,
                               "topic": "chat", "created_ms": 1_700_000_000_001,
                               "expires_ms": 1_700_003_600_001, "body": b"second".hex()},
                              {"message_id": "ac" * 16, "seq": 0, "kind": 2, "topic": "",
                               "created_ms": 0, "expires_ms": 0, "body": "ee" * 16 + "ef" * 16}],
                  "sealed": batch.hex()},
        # version 3: the same entries, signature over SHA-256 of the inner part
        "batch3": {"ephemeral_private": bytes([0x77] * 32).hex(), "entries": "as batch",
                   "sealed": batch3.hex()},
    }


if __name__ == "__main__":
    out = Path(__file__).parent / "vectors" / "node_envelope.json"
    out.write_text(json.dumps(vectors(), indent=1) + "\n")
    sys.stdout.write(f"wrote {out}\n")
