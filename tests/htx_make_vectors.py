"""Regenerate tests/vectors/htx.json (run by hand; the tests check the file, not this)."""
import json
from pathlib import Path

from betanet._native import htx as n

k1 = bytes(range(0x00, 0x20))
k2 = bytes(range(0x20, 0x40))
hh = bytes(range(0x40, 0x60))
ns1, ns2 = n.derive_ns(k1), n.derive_ns(k2)
k1n = n.next_key(k1, hh)
frames = []


def add(direction, key, ns, counter, ftype, sid, pt, note):
    frames.append(dict(note=note, direction=direction, counter=counter, type=ftype, stream_id=sid,
                       plaintext=pt.hex(), frame=n.frame_seal(key, ns, counter, ftype, sid, pt).hex()))


add("i2r", k1, ns1, 0, n.STREAM, 1, b"\x00hello", "STREAM on stream 1, data 'hello'")
add("i2r", k1, ns1, 1, n.STREAM, 1, b"\x01", "STREAM FIN, no data")
add("i2r", k1, ns1, 2, n.STREAM, 3, b"\x02\x00\x00", "STREAM RESET code 0 on stream 3")
add("i2r", k1, ns1, 3, n.STREAM, 15293, b"\x00" + b"x" * 20, "STREAM on stream 15293 (2-byte varint)")
add("i2r", k1, ns1, 4, n.PING, 0, b"\x00" + bytes(range(8)), "PING token 0001..07")
add("r2i", k2, ns2, 0, n.PING, 0, b"\x01" + bytes(range(8)), "PING reply")
add("r2i", k2, ns2, 1, n.WINDOW_UPDATE, 0, n.varint_encode(65535), "WINDOW_UPDATE connection +65535")
add("r2i", k2, ns2, 2, n.WINDOW_UPDATE, 2, n.varint_encode(1000000), "WINDOW_UPDATE stream 2 +1000000")
add("r2i", k2, ns2, 3, n.CLOSE, 0, b"\x00\x01bad", "CLOSE code 1 PROTOCOL_ERROR, reason 'bad'")
add("i2r", k1, ns1, 5, n.KEY_UPDATE, 0, b"", "KEY_UPDATE (last frame under k1)")
add("i2r", k1n, n.derive_ns(k1n), 0, n.STREAM, 1, b"\x00after", "first frame under K' = next(k1)")
varints = [dict(value=v, hex=n.varint_encode(v).hex()) for v in (0, 37, 63, 64, 15293, 16383, 16384,
                                                                     494878333, 1073741824, 151288809941952652)]
doc = dict(k1=k1.hex(), k2=k2.hex(), handshake_hash=hh.hex(), ns1=ns1.hex(), ns2=ns2.hex(),
           next_k1=k1n.hex(), next_ns1=n.derive_ns(k1n).hex(), frames=frames, varints=varints,
           varints_non_shortest=[dict(hex="4025", value=37), dict(hex="9d7f3e7d", value=494878333)])
Path(__file__).with_name("vectors").joinpath("htx.json").write_text(json.dumps(doc, indent=1) + "\n")
