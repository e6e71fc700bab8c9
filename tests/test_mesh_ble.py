"""BleakRadio without an adapter: the sans-IO link table, the adapter glue against a fake
bleak (scan -> connect -> subscribe -> write, notifications in, disconnect), a clear
error when no adapter is reachable, and a real-adapter test that skips without one."""
from __future__ import annotations

import asyncio
import random
import types

import pytest

from betanet.errors import InvalidArgumentError, UnsupportedError
from betanet.mesh.ble import CHARACTERISTIC_UUID, SERVICE_UUID, BleakRadio, BleLinks
from betanet.mesh.gatt import write_limit
from betanet.mesh.router import Delivered, Identity, MeshRouter
from betanet.mesh.service import MeshService, NeighbourChanged


def _routers(n=3, seed=3):
    rng = random.Random(seed)
    return [MeshRouter(Identity.generate(f"p{i}", rng), rng=random.Random(i)) for i in range(n)], rng


def _announce(r, ttl=7):
    r.announce(1, ttl=ttl)           # TTL 7: direct, as BitChat and MeshService send them
    (f,) = r.frames_to_send()
    return f


def test_links_bind_on_announce_and_cut_writes_per_link():
    (me, x, y), rng = _routers()
    links = BleLinks(me.me)
    links.connected("AA", 185)
    links.connected("BB", 517)
    x.broadcast(b"before the announce", 1)
    (early,) = x.frames_to_send()
    frames, bound = links.received("AA", early)
    assert bound is None and frames[0][0] == early and frames[0][1] not in (x.me, y.me)
    assert links.neighbours() == []
    # our own announce echoed back never binds a link
    assert links.received("BB", _announce(me))[1] is None
    frames, bound = links.received("AA", _announce(x))
    assert bound == x.me and links.neighbours() == [x.me]
    assert links.received("AA", early)[0][0][1] == x.me
    # a second link cannot claim a bound peer
    assert links.received("BB", _announce(x))[1] is None
    y.broadcast(rng.randbytes(1500), 1)
    for f in y.frames_to_send():
        ws = links.writes(f)
        assert {a for a, _ in ws} == {"AA", "BB"}
        assert all(len(w) <= write_limit(185 if a == "AA" else 517) for a, w in ws)
    assert links.disconnected("AA") == x.me and links.neighbours() == []
    assert links.disconnected("BB") is None and links.disconnected("nope") is None
    assert links.received("AA", early) == ([], None)
    with pytest.raises(InvalidArgumentError):
        links.connected("CC", 10)
    with pytest.raises(InvalidArgumentError, match="cannot carry BitChat"):
        links.connected("CC", 109)                   # a write limit of 106 bytes cannot carry a fragment
    links.connected("CC", 110)


# ---- a fake bleak: just the surface BleakRadio uses ----------------------------------------
class _Device:
    def __init__(self, address):
        self.address = address


class _FakeAir:
    """Peripherals a fake scanner finds; each is a MeshRouter answering over GATT."""

    def __init__(self, peers):
        self.peers = peers              # address -> MeshRouter
        self.clients = {}
        self.scanner = None


def _fake_bleak(air):
    class BleakError(Exception):
        pass

    class BleakScanner:
        def __init__(self, callback, service_uuids=None, **kw):
            assert service_uuids == [SERVICE_UUID]
            self.callback = callback
            air.scanner = self

        async def start(self):
            for addr in air.peers:
                asyncio.get_running_loop().call_soon(self.callback, _Device(addr), None)

        async def stop(self):
            pass

    class BleakClient:
        def __init__(self, device, disconnected_callback=None):
            self.address = device.address
            self.mtu_size = getattr(air, "mtu", 185)
            self.on_disc = disconnected_callback
            self.notify = None
            self.written = []
            air.clients[self.address] = self

        async def connect(self):
            pass

        async def disconnect(self):
            self.closed = True

        async def start_notify(self, char, cb):
            assert char == CHARACTERISTIC_UUID
            self.notify = cb
            # the peripheral announces itself on subscription, as BitChat does
            cb(None, bytearray(_announce(air.peers[self.address])))

        async def write_gatt_char(self, char, data, response=None):
            assert char == CHARACTERISTIC_UUID and response is False and len(data) <= 182
            self.written.append(bytes(data))

    return types.SimpleNamespace(BleakScanner=BleakScanner, BleakClient=BleakClient,
                                 exc=types.SimpleNamespace(BleakError=BleakError))


def test_bleak_radio_glue_against_a_fake_backend():
    async def run():
        (me, x), rng = _routers(2)
        air = _FakeAir({"11:22:33:44:55:66": x})
        radio = BleakRadio(me.me)
        radio.bleak = _fake_bleak(air)
        svc = MeshService(me, radio)
        events = svc.events()
        await radio.start()
        await svc.start()
        ev = await asyncio.wait_for(anext(events), 5)
        while not isinstance(ev, NeighbourChanged):
            ev = await asyncio.wait_for(anext(events), 5)
        assert ev.peer_id == x.me and ev.up and radio.neighbours() == [x.me]
        client = air.clients["11:22:33:44:55:66"]
        # out: a large message is cut to the link's 182-byte writes, in order
        body = rng.randbytes(1200)
        svc.send_to(x.me, body)
        await asyncio.sleep(0.05)
        got = [e for w in client.written for e in x.receive(w, me.me, 2) if isinstance(e, Delivered)]
        assert [e.packet.payload for e in got] == [body]
        assert radio.energy.frames_sent == len(client.written) and radio.energy.tx > 0
        # in: a notification is a frame from the bound neighbour
        x.broadcast(b"from the phone", 3)
        waiter = svc.wait_for(lambda e: isinstance(e, Delivered) and e.packet.payload == b"from the phone", 5)
        for f in x.frames_to_send():
            client.notify(None, bytearray(f))
        assert (await waiter).link == x.me
        # the link drops: the neighbour goes down
        client.on_disc(client)
        ev = await asyncio.wait_for(anext(events), 5)
        while not isinstance(ev, NeighbourChanged):
            ev = await asyncio.wait_for(anext(events), 5)
        assert ev == NeighbourChanged(x.me, False, 0.0) and radio.neighbours() == []
        await svc.stop()
        await radio.stop()
    asyncio.run(run())


def test_a_link_too_small_for_bitchat_is_refused_not_a_crash_at_send():
    async def run():
        (me, x), _ = _routers(2)
        air = _FakeAir({"11:22:33:44:55:66": x})
        air.mtu = 23                                 # an exchange that never happened
        radio = BleakRadio(me.me)
        radio.bleak = _fake_bleak(air)
        await radio.start()
        for _ in range(20):
            await asyncio.sleep(0)
        assert "11:22:33:44:55:66" in air.clients and radio.links.links == {} and radio.neighbours() == []
        assert air.clients["11:22:33:44:55:66"].closed      # and not left connected
        radio.send(_announce(me))                    # before the fix: plan_writes raised here
        await radio.stop()
    asyncio.run(run())


def test_only_a_direct_genuine_announce_binds_a_link():
    """A relayed announce (TTL below 7) names a peer further away, and a forged one nobody:
    neither may bind the link (before the fix the first announce heard bound it)."""
    (me, x, y), _ = _routers()
    links = BleLinks(me.me)
    links.connected("AA", 517)
    relayed = _announce(y, ttl=7)
    relayed = relayed[:2] + bytes([6]) + relayed[3:]          # y's announce one hop on
    assert links.received("AA", relayed)[1] is None
    assert links.received("AA", _announce(y, ttl=1))[1] is None   # cannot tell: not bound
    genuine = _announce(x)
    forged = bytearray(genuine)
    forged[24] ^= 1                                            # a nickname byte: signed, still decodes
    assert links.received("AA", bytes(forged))[1] is None
    other = bytearray(_announce(y))
    other[14:22] = x.me                                        # y's keys, x's sender id
    assert links.received("AA", bytes(other))[1] is None
    assert links.unbound_announces == 4 and links.neighbours() == []
    assert links.received("AA", genuine)[1] == x.me and links.neighbours() == [x.me]


def test_a_refused_small_mtu_device_is_retried_after_a_bounded_growing_backoff():
    from betanet.mesh import ble
    links = BleLinks(b"\1" * 8)
    waits = [links.refused("AA", 0.0) for _ in range(8)]
    assert waits == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 960.0, 960.0]
    assert not links.may_connect("AA", 959.0) and links.may_connect("AA", 960.0)
    assert links.may_connect("BB", 0.0)
    for i in range(ble.REFUSED_MEMORY + 10):                   # memory is bounded
        links.refused(f"D{i}", 0.0)
    assert len(links._refused) == ble.REFUSED_MEMORY

    async def run():
        (me, x), _ = _routers(2)
        air = _FakeAir({"11:22:33:44:55:66": x})
        air.mtu = 23
        radio = BleakRadio(me.me)
        radio.bleak = _fake_bleak(air)
        connects = []
        real_client = radio.bleak.BleakClient
        radio.bleak.BleakClient = lambda *a, **kw: connects.append(1) or real_client(*a, **kw)
        await radio.start()
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(connects) == 1 and radio.links.links == {}
        for _ in range(50):                                    # the phone keeps advertising
            air.scanner.callback(_Device("11:22:33:44:55:66"), None)
            await asyncio.sleep(0)
        assert len(connects) == 1                              # before the fix: 51
        radio.links._refused["11:22:33:44:55:66"] = (0.0, 1)   # the backoff ran out
        air.scanner.callback(_Device("11:22:33:44:55:66"), None)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(connects) == 2
        assert radio.links._refused["11:22:33:44:55:66"][1] == 2
        await radio.stop()
    asyncio.run(run())


def test_bad_arguments_and_send_before_start():
    with pytest.raises(InvalidArgumentError):
        BleakRadio(b"short")
    with pytest.raises(InvalidArgumentError):
        BleakRadio(b"\1" * 8, att_mtu=5)
    with pytest.raises(InvalidArgumentError):
        BleakRadio(b"\1" * 8, att_mtu=100)
    r = BleakRadio(b"\1" * 8)
    with pytest.raises(Exception) as info:
        r.send(b"x")
    assert "not running" in str(info.value)


def _adapter_present() -> bool:
    import os
    return os.path.isdir("/sys/class/bluetooth") and bool(os.listdir("/sys/class/bluetooth"))


@pytest.mark.skipif(_adapter_present(), reason="a Bluetooth adapter is present: the no-adapter error cannot be shown")
def test_no_adapter_gives_a_clear_error():
    async def run():
        with pytest.raises(UnsupportedError, match="no Bluetooth LE adapter"):
            await BleakRadio(b"\1" * 8).start()
    asyncio.run(run())


@pytest.mark.skipif(not _adapter_present(), reason="no Bluetooth adapter on this machine (/sys/class/bluetooth is empty)")
def test_real_adapter_scans():
    async def run():
        radio = BleakRadio(b"\1" * 8)
        await radio.start()
        await asyncio.sleep(2.0)
        await radio.stop()
    asyncio.run(run())
