"""The BLE peripheral role without an adapter: the objects exported to BlueZ as plain data,
WriteValue option parsing, the write/notify path through PeripheralLinks and the exported
objects on a fake bus, BleRadio(role="both") merging two links to one peer, the whole
D-Bus conversation against a real `dbus-daemon --session` with a stand-in for bluetoothd,
and a real-adapter test that skips without one."""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess

import pytest

from betanet.errors import InvalidArgumentError, StateError, UnsupportedError
from betanet.mesh.ble import CHARACTERISTIC_UUID, SERVICE_UUID, TESTNET_SERVICE_UUID
from betanet.mesh.ble_peripheral import (ADVERTISEMENT_PATH, APP_PATH, CHARACTERISTIC_PATH, MIN_ATT_MTU,
                                         SERVICE_PATH, BleRadio, BluezPeripheral, PeripheralLinks,
                                         advertisement_properties, gatt_objects, parse_write_options)
from betanet.mesh.gatt import write_limit
from betanet.mesh.router import Delivered, Identity, MeshRouter

dbus_fast = pytest.importorskip("dbus_fast", reason="dbus-fast comes with the 'ble' extra (bleak)")
from dbus_fast import Variant  # noqa: E402

DEV_A = "/org/bluez/hci0/dev_11_22_33_44_55_66"
DEV_B = "/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF"


def _routers(n=3, seed=5):
    rng = random.Random(seed)
    return [MeshRouter(Identity.generate(f"p{i}", rng), rng=random.Random(i)) for i in range(n)], rng


def _announce(r, t=1):
    r.announce(t, ttl=7)             # direct, as BitChat and MeshService send them (binds links)
    (f,) = r.frames_to_send()
    return f


def _opts(device, mtu=None, **kw):
    o = {"device": Variant("o", device), "type": Variant("s", "command"), "link": Variant("s", "LE")}
    if mtu is not None:
        o["mtu"] = Variant("q", mtu)
    o.update(kw)
    return o


# ---- plain data ------------------------------------------------------------------------------
def test_exported_objects_and_advertisement_as_plain_data():
    tree = gatt_objects()
    assert set(tree) == {SERVICE_PATH, CHARACTERISTIC_PATH}
    assert all(p.startswith(APP_PATH + "/") for p in tree) and not ADVERTISEMENT_PATH.startswith(APP_PATH + "/")
    assert tree[SERVICE_PATH] == {"org.bluez.GattService1": {"UUID": SERVICE_UUID, "Primary": True}}
    assert tree[CHARACTERISTIC_PATH] == {"org.bluez.GattCharacteristic1": {
        "UUID": CHARACTERISTIC_UUID, "Service": SERVICE_PATH,
        "Flags": ["write", "write-without-response", "notify"], "Notifying": False, "Value": b""}}
    assert gatt_objects(TESTNET_SERVICE_UUID)[SERVICE_PATH]["org.bluez.GattService1"]["UUID"] == TESTNET_SERVICE_UUID
    assert advertisement_properties() == {"Type": "peripheral", "ServiceUUIDs": [SERVICE_UUID]}


def test_write_options_parsing():
    o = parse_write_options(_opts(DEV_A, 185, offset=Variant("q", 0)))
    assert (o.device, o.mtu, o.offset, o.type) == (DEV_A, 185, 0, "command")
    o = parse_write_options({"device": DEV_B})                 # plain values, old BlueZ: no mtu
    assert (o.device, o.mtu, o.offset, o.type) == (DEV_B, None, 0, None)
    for bad in ([], {}, {"device": "relative"}, {"device": 7}, _opts(DEV_A, 22), _opts(DEV_A) | {"mtu": 70000},
                _opts(DEV_A) | {"mtu": Variant("b", True)},
                _opts(DEV_A, 185, offset=Variant("i", -1)), _opts(DEV_A, 185, type=Variant("s", "bogus"))):
        with pytest.raises(InvalidArgumentError):
            parse_write_options(bad)


# ---- sans-IO links -----------------------------------------------------------------------------
def test_peripheral_links_bind_track_mtu_and_cut_notifications_for_the_smallest():
    (me, x, y), rng = _routers()
    links = PeripheralLinks(me.me)
    frames, bound = links.written(_announce(x), _opts(DEV_A, 517))
    assert bound == x.me and frames[0][1] == x.me and links.neighbours() == [x.me]
    # no subscription yet: nothing goes out, counted
    assert links.notifications(_announce(me)) == [] and links.unsent == 1
    links.notifying = True
    y.broadcast(rng.randbytes(1500), 2)
    big = y.frames_to_send()
    assert all(len(w) <= write_limit(517) for f in big for w in links.notifications(f))
    # a second central on a 185-byte MTU: every notification now fits it too (BlueZ sends to both)
    links.written(_announce(y), _opts(DEV_B, 185))
    assert sorted(links.neighbours()) == sorted([x.me, y.me])
    ws = [w for f in big for w in links.notifications(f)]
    assert ws and all(len(w) <= write_limit(185) for w in ws) and max(len(w) for w in ws) > write_limit(23)
    # the MTU of a link follows what BlueZ passes with each write
    links.written(_announce(y, 3), _opts(DEV_B, 517))
    assert links.links[DEV_B].att_mtu == 517
    # without "mtu" (BlueZ < 5.62) the written length is a lower bound
    (_, z), _ = _routers(2, seed=9)
    links.written(_announce(z), {"device": Variant("o", "/org/bluez/hci0/dev_01")})
    assert links.links["/org/bluez/hci0/dev_01"].att_mtu == len(_announce(z, 2)) + 3
    # a link that cannot carry BitChat is refused, counted; a write at an offset is refused
    assert links.written(_announce(z), _opts("/org/bluez/hci0/dev_02", MIN_ATT_MTU - 1)) == ([], None)
    assert links.refused_small_mtu == 1 and "/org/bluez/hci0/dev_02" not in links.links
    with pytest.raises(InvalidArgumentError):
        links.written(b"x", _opts(DEV_A, 185, offset=Variant("q", 4)))
    assert links.disconnected(DEV_A) == x.me and x.me not in links.neighbours()


# ---- the exported objects on a fake bus --------------------------------------------------------
class _FakeBus:
    def __init__(self):
        self.exported = {}

    def export(self, path, iface):
        self.exported[path] = iface

    def unexport(self, path):
        self.exported.pop(path, None)


def test_write_and_notify_through_the_exported_objects_on_a_fake_bus():
    async def run():
        (me, x), rng = _routers(2)
        p = BluezPeripheral(me.me)
        with pytest.raises(StateError):
            p.send(b"x")
        bus = _FakeBus()
        await p.export(bus)
        assert set(bus.exported) == {SERVICE_PATH, CHARACTERISTIC_PATH, ADVERTISEMENT_PATH}
        char = bus.exported[CHARACTERISTIC_PATH]
        sent = []
        char.emit_properties_changed = lambda changed, invalidated=[]: sent.append(changed)
        got, ups = [], []
        p.on_frame = lambda f, link: got.append((f, link))
        p.on_neighbour = lambda peer, up: ups.append((peer, up))
        char.WriteValue(_announce(x), _opts(DEV_A, 185))
        assert ups == [(x.me, True)] and got[0][1] == x.me
        with pytest.raises(dbus_fast.DBusError):
            char.WriteValue(b"x", {"device": Variant("s", "nope")})
        char.StartNotify()
        assert sent[-1] == {"Notifying": True}
        me.broadcast(rng.randbytes(900), 2)
        for f in me.frames_to_send():
            p.send(f)
        values = [c["Value"] for c in sent if "Value" in c]
        assert values and all(len(v) <= write_limit(185) for v in values)
        delivered = [e for v in values for e in x.receive(v, me.me, 3) if isinstance(e, Delivered)]
        assert len(delivered) == 1 and len(delivered[0].packet.payload) == 900
        assert p.energy.frames_sent == len(values) and p.energy.frames_received == 1
        # Device1.Connected -> false on the central's path: the link is lost
        msg = dbus_fast.Message.new_signal(DEV_A, "org.freedesktop.DBus.Properties", "PropertiesChanged", "sa{sv}as",
                                           ["org.bluez.Device1", {"Connected": Variant("b", False)}, []])
        p._signal(msg)
        assert ups[-1] == (x.me, False) and p.neighbours() == []
        await p.stop()
        assert bus.exported == {}
    asyncio.run(run())


def test_mesh_service_runs_on_the_peripheral():
    from betanet.mesh.service import MeshService, NeighbourChanged

    async def run():
        (me, x), rng = _routers(2, seed=11)
        p = BluezPeripheral(me.me)
        bus = _FakeBus()
        await p.export(bus)
        char = bus.exported[CHARACTERISTIC_PATH]
        values = []
        char.emit_properties_changed = lambda changed, invalidated=[]: values.extend(
            [changed["Value"]] if "Value" in changed else [])
        svc = MeshService(me, p)
        await svc.start()
        up = svc.wait_for(lambda e: isinstance(e, NeighbourChanged) and e.up, 5)
        char.StartNotify()
        char.WriteValue(_announce(x), _opts(DEV_A, 247))
        assert (await up).peer_id == x.me
        body = rng.randbytes(1000)
        svc.send_to(x.me, body)
        await asyncio.sleep(0.05)
        got = [e.packet.payload for v in values for e in x.receive(v, me.me, 5) if isinstance(e, Delivered)]
        assert body in got and all(len(v) <= write_limit(247) for v in values)
        x.broadcast(b"from the central", 6)
        seen = svc.wait_for(lambda e: isinstance(e, Delivered) and e.packet.payload == b"from the central", 5)
        for f in x.frames_to_send():
            char.WriteValue(f, _opts(DEV_A, 247))
        assert (await seen).link == x.me
        await svc.stop()
        await p.stop()
    asyncio.run(run())


def test_both_roles_make_one_neighbour_per_peer():
    r = BleRadio(b"\1" * 8, role="both")
    ups = []
    r.on_neighbour = lambda peer, up: ups.append((peer, up))
    central, peripheral = r.parts["central"], r.parts["peripheral"]
    assert central.energy is peripheral.energy is r.energy
    peer = b"\2" * 8
    central.on_neighbour(peer, True)
    peripheral.on_neighbour(peer, True)
    assert ups == [(peer, True)] and r.neighbours() == [peer]
    central.on_neighbour(peer, False)
    assert ups == [(peer, True)] and r.neighbours() == [peer]
    peripheral.on_neighbour(peer, False)
    assert ups == [(peer, True), (peer, False)] and r.neighbours() == []
    assert set(BleRadio(b"\1" * 8, role="peripheral").parts) == {"peripheral"}
    assert set(BleRadio(b"\1" * 8, role="central").parts) == {"central"}
    with pytest.raises(InvalidArgumentError):
        BleRadio(b"\1" * 8, role="observer")
    with pytest.raises(InvalidArgumentError):
        BluezPeripheral(b"short")


# ---- a real bus: dbus-daemon --session and a stand-in for bluetoothd ---------------------------
@pytest.fixture
def session_bus():
    exe = shutil.which("dbus-daemon")
    if exe is None:
        pytest.skip("dbus-daemon is not installed (Debian package 'dbus')")
    proc = subprocess.Popen([exe, "--session", "--nofork", "--print-address=1"], stdout=subprocess.PIPE, text=True)
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), address
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def _fake_bluez():
    from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

    class Manager(ServiceInterface):
        def __init__(self, name):
            super().__init__(name)
            self.calls = []
            self.refuse = None              # a D-Bus error name to answer RegisterApplication with

        @dbus_method()
        def RegisterApplication(self, path: "o", options: "a{sv}"):  # noqa: F821
            if self.refuse:
                raise dbus_fast.DBusError(self.refuse, "refused by the test")
            self.calls.append(("RegisterApplication", path))

        @dbus_method()
        def UnregisterApplication(self, path: "o"):  # noqa: F821
            self.calls.append(("UnregisterApplication", path))

        @dbus_method()
        def RegisterAdvertisement(self, path: "o", options: "a{sv}"):  # noqa: F821
            self.calls.append(("RegisterAdvertisement", path))

        @dbus_method()
        def UnregisterAdvertisement(self, path: "o"):  # noqa: F821
            self.calls.append(("UnregisterAdvertisement", path))

    class Device(ServiceInterface):
        def __init__(self):
            super().__init__("org.bluez.Device1")

        @dbus_property(access=PropertyAccess.READ)
        def Connected(self) -> "b":  # noqa: F821
            return False

    return Manager("org.bluez.GattManager1"), Manager("org.bluez.LEAdvertisingManager1"), Device()


def _plain(v):
    v = getattr(v, "value", v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def test_application_over_a_real_session_bus(session_bus):
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    async def run():
        (me, x), rng = _routers(2)
        bluez = await MessageBus(bus_address=session_bus).connect()
        gatt, adv, device = _fake_bluez()
        bluez.export("/org/bluez/hci0", gatt)
        bluez.export("/org/bluez/hci0", adv)
        bluez.export(DEV_A, device)
        await bluez.request_name("org.bluez")
        p = BluezPeripheral(me.me, bus_address=session_bus, adapter="hci0")
        await p.start()
        assert p.adapter_path == "/org/bluez/hci0"
        assert gatt.calls == [("RegisterApplication", APP_PATH)] and adv.calls == [("RegisterAdvertisement", ADVERTISEMENT_PATH)]
        ups, got = [], []
        p.on_neighbour = lambda peer, up: ups.append((peer, up))
        p.on_frame = lambda f, link: got.append(f)

        async def call(path, iface, member, sig="", body=()):
            reply = await bluez.call(Message(destination=p.bus.unique_name, path=path, interface=iface,
                                             member=member, signature=sig, body=list(body)))
            assert reply.message_type == MessageType.METHOD_RETURN, (reply.error_name, reply.body)
            return reply.body

        # what bluetoothd does after RegisterApplication / RegisterAdvertisement
        (objects,) = await call(APP_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        assert {path: {i: _plain(props) for i, props in ifaces.items() if i.startswith("org.bluez.")}
                for path, ifaces in objects.items()} == gatt_objects()
        (props,) = await call(ADVERTISEMENT_PATH, "org.freedesktop.DBus.Properties", "GetAll", "s",
                              ["org.bluez.LEAdvertisement1"])
        assert _plain(props) == advertisement_properties()
        # a central subscribes and writes its announce; notifications come back as signals
        values = []
        queue: asyncio.Queue = asyncio.Queue()

        def on_msg(msg):
            if msg.member == "PropertiesChanged" and msg.path == CHARACTERISTIC_PATH and "Value" in msg.body[1]:
                values.append(bytes(msg.body[1]["Value"].value))
                queue.put_nowait(None)
        bluez.add_message_handler(on_msg)
        await bluez.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                 interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                                 body=[f"type='signal',path='{CHARACTERISTIC_PATH}'"]))
        await call(CHARACTERISTIC_PATH, "org.bluez.GattCharacteristic1", "StartNotify")
        await call(CHARACTERISTIC_PATH, "org.bluez.GattCharacteristic1", "WriteValue", "aya{sv}",
                   [_announce(x), _opts(DEV_A, 185)])
        assert ups == [(x.me, True)] and len(got) == 1
        bad = await bluez.call(Message(destination=p.bus.unique_name, path=CHARACTERISTIC_PATH,
                                       interface="org.bluez.GattCharacteristic1", member="WriteValue",
                                       signature="aya{sv}", body=[b"x", {}]))
        assert bad.message_type == MessageType.ERROR and bad.error_name == "org.bluez.Error.InvalidArguments"
        body = rng.randbytes(700)
        me.broadcast(body, 2)
        for f in me.frames_to_send():
            p.send(f)
        expected = p.energy.frames_sent
        assert expected >= 4                       # 700 bytes on 182-byte notifications
        while len(values) < expected:
            await asyncio.wait_for(queue.get(), 10)
        delivered = [e for v in values for e in x.receive(v, me.me, 3) if isinstance(e, Delivered)]
        assert delivered[0].packet.payload == body and all(len(v) <= write_limit(185) for v in values)
        # the central disconnects: bluetoothd says so on its device object
        device.emit_properties_changed({"Connected": False})
        for _ in range(100):
            if ups[-1] == (x.me, False):
                break
            await asyncio.sleep(0.02)
        assert ups[-1] == (x.me, False) and p.neighbours() == []
        await p.stop()
        assert ("UnregisterApplication", APP_PATH) in gatt.calls
        assert ("UnregisterAdvertisement", ADVERTISEMENT_PATH) in adv.calls
        bluez.disconnect()
    asyncio.run(run())


def test_missing_adapter_or_refused_registration_is_a_clear_error_and_cleans_up(session_bus):
    from dbus_fast.aio import MessageBus

    async def run():
        bluez = await MessageBus(bus_address=session_bus).connect()
        gatt, adv, _ = _fake_bluez()
        bluez.export("/org/bluez/hci0", gatt)
        bluez.export("/org/bluez/hci0", adv)
        await bluez.request_name("org.bluez")
        p = BluezPeripheral(b"\1" * 8, bus_address=session_bus, adapter="hci1")
        with pytest.raises(UnsupportedError, match="named hci1"):
            await p.start()
        assert p.bus is None and gatt.calls == []
        gatt.refuse = "org.bluez.Error.AlreadyExists"
        p = BluezPeripheral(b"\1" * 8, bus_address=session_bus)
        with pytest.raises(UnsupportedError, match="RegisterApplication failed: org.bluez.Error.AlreadyExists"):
            await p.start()
        assert p.bus is None and adv.calls == []
        bluez.disconnect()
    asyncio.run(run())


def test_no_bluez_on_the_bus_gives_a_clear_error(session_bus):
    async def run():
        with pytest.raises(UnsupportedError, match="no Bluetooth LE adapter available: bluetoothd is not on the bus"):
            await BluezPeripheral(b"\1" * 8, bus_address=session_bus).start()
    asyncio.run(run())


def test_both_roles_start_together_or_not_at_all(session_bus):
    from test_mesh_ble import _FakeAir, _fake_bleak

    async def run():
        (me, x), _ = _routers(2)
        r = BleRadio(me.me, role="both", bus_address=session_bus)     # no bluetoothd on this bus
        central = r.parts["central"]
        central.bleak = _fake_bleak(_FakeAir({"11:22:33:44:55:66": x}))
        with pytest.raises(UnsupportedError, match="bluetoothd is not on the bus"):
            await r.start()
        assert not central._running and r.parts["peripheral"].bus is None
    asyncio.run(run())


def _adapter_present() -> bool:
    return os.path.isdir("/sys/class/bluetooth") and bool(os.listdir("/sys/class/bluetooth"))


@pytest.mark.skipif(not _adapter_present(), reason="no Bluetooth adapter on this machine (/sys/class/bluetooth is empty)")
def test_real_adapter_advertises():
    async def run():
        p = BluezPeripheral(b"\1" * 8)
        await p.start()
        await asyncio.sleep(2.0)
        await p.stop()
    asyncio.run(run())
