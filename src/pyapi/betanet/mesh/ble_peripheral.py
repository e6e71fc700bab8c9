"""BitChat's peripheral role on Linux: a GATT server and an advertisement through BlueZ's
D-Bus API (`dbus-fast`, installed with bleak), and `BleRadio`, central and peripheral at once.

Why `dbus-fast` and not `bless`: bleak already speaks D-Bus through dbus-fast, and the
peripheral needs four small objects (application root, service, characteristic,
advertisement); `bless` would add a dependency and a second D-Bus library for them.

Sans-IO, tested without an adapter:
* `gatt_objects` / `advertisement_properties`: the object tree BlueZ reads from us
  (GetManagedObjects on the application root) and the advertisement, as plain data.
* `parse_write_options`: BlueZ's WriteValue options ("device", "mtu", "offset", "type").
* `PeripheralLinks` (a `BleLinks` keyed by the central's BlueZ device path): writes in,
  frames out through the same `WriteAssembler` and announce binding as the central role;
  each write carries the central's negotiated ATT_MTU ("mtu", BlueZ >= 5.62; older BlueZ
  omits it, and the written length + 3 is then a lower bound of it).
* Notifications: BlueZ sends a changed characteristic value to *every* subscribed central
  (the D-Bus API has no per-device notification) and cuts it to each one's ATT_MTU - 3,
  so a frame is planned once, for the smallest write limit among the known centrals.

`BluezPeripheral` only moves bytes: it exports the objects on a bus, registers them with
`org.bluez.GattManager1` and `LEAdvertisingManager1` on the adapter, turns WriteValue
calls into frames, notifications into PropertiesChanged("Value") signals, and a central's
`org.bluez.Device1.Connected` going false into a lost link (a central that comes back is
a new link, bound again by its first announce).
"""
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable

from betanet.errors import BetanetError, InvalidArgumentError, StateError, UnsupportedError
from betanet.mesh.ble import CHARACTERISTIC_UUID, MIN_ATT_MTU, SERVICE_UUID, BleakRadio, BleLinks, hand_up
from betanet.mesh.gatt import ATT_HEADER_BYTES, ATT_MTU_DEFAULT, plan_writes, write_limit
from betanet.mesh.radio import MTU_BYTES, RX_J_PER_BYTE, TX_J_PER_BYTE, Energy

__all__ = ["APP_PATH", "SERVICE_PATH", "CHARACTERISTIC_PATH", "ADVERTISEMENT_PATH", "CHARACTERISTIC_FLAGS",
           "MIN_ATT_MTU", "gatt_objects", "advertisement_properties", "WriteOptions", "parse_write_options",
           "PeripheralLinks", "BluezPeripheral", "BleRadio"]

log = logging.getLogger(__name__)

APP_PATH = "/org/betanet/mesh"
SERVICE_PATH = APP_PATH + "/service0"
CHARACTERISTIC_PATH = SERVICE_PATH + "/char0"
ADVERTISEMENT_PATH = "/org/betanet/advertisement0"            # outside the application tree
CHARACTERISTIC_FLAGS = ("write", "write-without-response", "notify")   # as BitChat's characteristic

GATT_SERVICE = "org.bluez.GattService1"
GATT_CHARACTERISTIC = "org.bluez.GattCharacteristic1"
LE_ADVERTISEMENT = "org.bluez.LEAdvertisement1"
DEVICE = "org.bluez.Device1"


def gatt_objects(service_uuid: str = SERVICE_UUID, *, notifying: bool = False,
                 value: bytes = b"") -> dict[str, dict[str, dict[str, Any]]]:
    """What GetManagedObjects on APP_PATH answers (BlueZ doc/org.bluez.GattManager.rst)."""
    return {
        SERVICE_PATH: {GATT_SERVICE: {"UUID": service_uuid, "Primary": True}},
        CHARACTERISTIC_PATH: {GATT_CHARACTERISTIC: {"UUID": CHARACTERISTIC_UUID, "Service": SERVICE_PATH,
                                                    "Flags": list(CHARACTERISTIC_FLAGS),
                                                    "Notifying": notifying, "Value": value}},
    }


def advertisement_properties(service_uuid: str = SERVICE_UUID) -> dict[str, Any]:
    """A connectable advertisement with the service UUID and nothing identifying (BitChat
    phones advertise no name either)."""
    return {"Type": "peripheral", "ServiceUUIDs": [service_uuid]}


@dataclass(frozen=True)
class WriteOptions:
    device: str
    mtu: int | None
    offset: int
    type: str | None


def parse_write_options(options: Any) -> WriteOptions:
    """BlueZ's WriteValue options (values plain or dbus Variants) -> WriteOptions."""
    if not isinstance(options, dict):
        raise InvalidArgumentError("WriteValue options must be a dictionary")
    v = {k: getattr(x, "value", x) for k, x in options.items()}
    device = v.get("device")
    if not isinstance(device, str) or not device.startswith("/"):
        raise InvalidArgumentError(f"WriteValue without a central's device path: {device!r}")
    mtu = v.get("mtu")
    if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool) or not ATT_MTU_DEFAULT <= mtu <= 65535):
        raise InvalidArgumentError(f"WriteValue mtu must be an integer in 23..65535, not {mtu!r}")
    offset = v.get("offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidArgumentError(f"WriteValue offset must be a non-negative integer, not {offset!r}")
    kind = v.get("type")
    if kind is not None and kind not in ("command", "request", "reliable"):
        raise InvalidArgumentError(f"unknown WriteValue type {kind!r}")
    return WriteOptions(device, mtu, offset, kind)


class PeripheralLinks(BleLinks):
    """The sans-IO state of a peripheral: centrals by device path, writes in, notifications out."""

    def __init__(self, me: bytes) -> None:
        super().__init__(me)
        self.notifying = False             # at least one central subscribed (BlueZ counts them)
        self.refused_small_mtu = 0         # writes dropped: the central's link cannot carry BitChat
        self.unsent = 0                    # frames not notified: nobody subscribed, or no central known

    def written(self, value: bytes, options: Any) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """One WriteValue -> ([(frame, link id)], peer newly bound or None)."""
        o = parse_write_options(options)
        if o.offset:
            raise InvalidArgumentError("BitChat frames are written whole; a write at an offset is refused")
        link = self.links.get(o.device)
        mtu = o.mtu if o.mtu is not None else max(link.att_mtu if link else ATT_MTU_DEFAULT, len(value) + ATT_HEADER_BYTES)
        if mtu < MIN_ATT_MTU:
            self.refused_small_mtu += 1
            return [], None
        if link is None:
            self.connected(o.device, mtu)
        else:
            link.att_mtu = mtu             # BlueZ passes the current value with every write
        return self.received(o.device, bytes(value))

    def notifications(self, frame: bytes) -> list[bytes]:
        """The notifications carrying `frame` to every subscribed central, or [] (counted)."""
        if not self.notifying or not self.links:
            self.unsent += 1
            return []
        return plan_writes(frame, min(write_limit(link.att_mtu) for link in self.links.values()))


def _dbus() -> Any:
    try:
        import dbus_fast
        import dbus_fast.aio
        import dbus_fast.service
    except ImportError:
        raise UnsupportedError("the BLE peripheral needs dbus-fast: pip install 'betanet[ble]'") from None
    return dbus_fast


def _interfaces(peripheral: "BluezPeripheral") -> tuple[Any, Any, Any]:
    """The service, characteristic and advertisement objects, bound to `peripheral` (built lazily:
    dbus-fast is an optional dependency)."""
    dbus_fast = _dbus()
    from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_method, dbus_property

    class Service(ServiceInterface):
        def __init__(self) -> None:
            super().__init__(GATT_SERVICE)
            self._p = gatt_objects(peripheral.service_uuid)[SERVICE_PATH][GATT_SERVICE]

        @dbus_property(access=PropertyAccess.READ)
        def UUID(self) -> "s":                                       # noqa: F821 (D-Bus signature)
            return self._p["UUID"]

        @dbus_property(access=PropertyAccess.READ)
        def Primary(self) -> "b":                                    # noqa: F821
            return self._p["Primary"]

    class Characteristic(ServiceInterface):
        def __init__(self) -> None:
            super().__init__(GATT_CHARACTERISTIC)
            self._p = gatt_objects(peripheral.service_uuid)[CHARACTERISTIC_PATH][GATT_CHARACTERISTIC]
            self._value = b""

        @dbus_property(access=PropertyAccess.READ)
        def UUID(self) -> "s":                                       # noqa: F821
            return self._p["UUID"]

        @dbus_property(access=PropertyAccess.READ)
        def Service(self) -> "o":                                    # noqa: F821
            return self._p["Service"]

        @dbus_property(access=PropertyAccess.READ)
        def Flags(self) -> "as":                                     # noqa: F821
            return self._p["Flags"]

        @dbus_property(access=PropertyAccess.READ)
        def Notifying(self) -> "b":                                  # noqa: F821
            return peripheral.links.notifying

        @dbus_property(access=PropertyAccess.READ)
        def Value(self) -> "ay":                                     # noqa: F821
            return self._value

        @dbus_method()
        def WriteValue(self, value: "ay", options: "a{sv}") -> None:  # noqa: F821
            try:
                peripheral._written(bytes(value), options)
            except InvalidArgumentError as exc:
                raise dbus_fast.DBusError("org.bluez.Error.InvalidArguments", str(exc)) from None

        @dbus_method()
        def StartNotify(self) -> None:
            peripheral._set_notifying(True)

        @dbus_method()
        def StopNotify(self) -> None:
            peripheral._set_notifying(False)

        def notify(self, value: bytes) -> None:
            self._value = value
            self.emit_properties_changed({"Value": value})

    class Advertisement(ServiceInterface):
        def __init__(self) -> None:
            super().__init__(LE_ADVERTISEMENT)
            self._p = advertisement_properties(peripheral.service_uuid)

        @dbus_property(access=PropertyAccess.READ)
        def Type(self) -> "s":                                       # noqa: F821
            return self._p["Type"]

        @dbus_property(access=PropertyAccess.READ)
        def ServiceUUIDs(self) -> "as":                              # noqa: F821
            return self._p["ServiceUUIDs"]

        @dbus_method()
        def Release(self) -> None:
            log.info("BLE peripheral: BlueZ released the advertisement")

    return Service(), Characteristic(), Advertisement()


class BluezPeripheral:
    """A BitChat peripheral on a BlueZ adapter (Linux): advertised, written to, notifying."""

    def __init__(self, peer_id: bytes, *, service_uuid: str = SERVICE_UUID, adapter: str | None = None,
                 bus_address: str | None = None) -> None:
        if len(peer_id) != 8:
            raise InvalidArgumentError("peer id must be 8 bytes")
        self.peer_id = bytes(peer_id)
        self.service_uuid, self.adapter, self.bus_address = service_uuid, adapter, bus_address
        self.energy = Energy()
        self.on_frame: Callable[[bytes, bytes], None] | None = None
        self.on_neighbour: Callable[[bytes, bool], None] | None = None
        self.links = PeripheralLinks(self.peer_id)
        self.bus: Any = None
        self.adapter_path: str | None = None
        self._service = self._char = self._adv = None
        self._exported = False
        self._registered = False
        self._own_bus = False

    # ---- Radio protocol -----------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        if len(frame) > MTU_BYTES:
            raise InvalidArgumentError(f"frame of {len(frame)} bytes exceeds the {MTU_BYTES}-byte MTU")
        if not self._exported:
            raise StateError("the BLE peripheral is not running")
        for w in self.links.notifications(frame):
            self._char.notify(w)
            # BlueZ sends it to every subscribed central
            self.energy.frames_sent += 1
            self.energy.bytes_sent += len(w) * len(self.links.links)
            self.energy.tx += len(w) * len(self.links.links) * TX_J_PER_BYTE

    def neighbours(self) -> list[bytes]:
        return self.links.neighbours()

    def link_quality(self, peer: bytes) -> float:
        return 1.0 if peer in self.links.by_peer else 0.0

    # ---- life cycle ---------------------------------------------------------------------
    async def export(self, bus: Any) -> None:
        """Put the application and advertisement objects on `bus` (no BlueZ needed)."""
        self.bus = bus
        self._service, self._char, self._adv = _interfaces(self)
        bus.export(SERVICE_PATH, self._service)
        bus.export(CHARACTERISTIC_PATH, self._char)
        bus.export(ADVERTISEMENT_PATH, self._adv)
        self._exported = True

    async def start(self) -> None:
        """Connect to the bus (the system bus unless `bus_address`), export, register with
        BlueZ; raises UnsupportedError when no BlueZ adapter can take a peripheral."""
        dbus_fast = _dbus()
        from dbus_fast.aio import MessageBus
        try:
            kw = {"bus_address": self.bus_address} if self.bus_address else {"bus_type": dbus_fast.BusType.SYSTEM}
            bus = await MessageBus(**kw).connect()
        except (OSError, EOFError, dbus_fast.DBusError) as exc:
            raise UnsupportedError(f"no Bluetooth LE adapter available: no D-Bus bus to reach BlueZ "
                                   f"({type(exc).__name__}: {exc})") from None
        await self.export(bus)
        self._own_bus = True
        try:
            await self.register()
        except BaseException:
            await self.stop()
            raise

    async def register(self) -> None:
        """Register the application and the advertisement with the adapter's managers."""
        self.adapter_path = await self._find_adapter()
        self.bus.add_message_handler(self._signal)
        await self._call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                         [f"type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
                          f"member='PropertiesChanged',arg0='{DEVICE}'"])
        await self._bluez("org.bluez.GattManager1", "RegisterApplication", "oa{sv}", [APP_PATH, {}])
        self._registered = True
        await self._bluez("org.bluez.LEAdvertisingManager1", "RegisterAdvertisement", "oa{sv}",
                          [ADVERTISEMENT_PATH, {}])

    async def stop(self) -> None:
        if self.bus is None:
            return
        if self._registered:
            for iface, member, path in (("org.bluez.LEAdvertisingManager1", "UnregisterAdvertisement", ADVERTISEMENT_PATH),
                                        ("org.bluez.GattManager1", "UnregisterApplication", APP_PATH)):
                with contextlib.suppress(BetanetError, OSError, EOFError):
                    await self._bluez(iface, member, "o", [path])
            self._registered = False
        with contextlib.suppress(Exception):
            self.bus.remove_message_handler(self._signal)
        for path in (SERVICE_PATH, CHARACTERISTIC_PATH, ADVERTISEMENT_PATH):
            with contextlib.suppress(Exception):
                self.bus.unexport(path)
        self._exported = False
        if self._own_bus:                  # a bus handed to export() belongs to its caller
            with contextlib.suppress(Exception):
                self.bus.disconnect()
        self.bus, self._own_bus = None, False

    # ---- bus side -----------------------------------------------------------------------
    async def _call(self, dest: str, path: str, iface: str, member: str, sig: str, body: list) -> Any:
        from dbus_fast import Message, MessageType
        reply = await self.bus.call(Message(destination=dest, path=path, interface=iface, member=member,
                                            signature=sig, body=body))
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            raise UnsupportedError(f"{iface}.{member} failed: {reply.error_name} {detail}".rstrip())
        return reply.body

    async def _bluez(self, iface: str, member: str, sig: str, body: list) -> Any:
        return await self._call("org.bluez", self.adapter_path, iface, member, sig, body)

    async def _find_adapter(self) -> str:
        try:
            (objects,) = await self._call("org.bluez", "/", "org.freedesktop.DBus.ObjectManager",
                                          "GetManagedObjects", "", [])
        except UnsupportedError as exc:
            raise UnsupportedError(f"no Bluetooth LE adapter available: bluetoothd is not on the bus ({exc})") from None
        for path, ifaces in sorted(objects.items()):
            if ("org.bluez.GattManager1" in ifaces and "org.bluez.LEAdvertisingManager1" in ifaces
                    and (self.adapter is None or path.rsplit("/", 1)[-1] == self.adapter)):
                return path
        raise UnsupportedError("no Bluetooth LE adapter available: no BlueZ adapter offers GattManager1 and "
                               "LEAdvertisingManager1" + (f" named {self.adapter}" if self.adapter else ""))

    def _signal(self, msg: Any) -> None:
        """A central's Device1.Connected went false: its link is lost."""
        if (msg.member != "PropertiesChanged" or msg.interface != "org.freedesktop.DBus.Properties"
                or msg.signature != "sa{sv}as" or msg.body[0] != DEVICE or msg.path not in self.links.links):
            return
        connected = msg.body[1].get("Connected")
        if connected is not None and getattr(connected, "value", connected) is False:
            self._lost(msg.path)

    # ---- callbacks from the exported objects ---------------------------------------------
    def _written(self, value: bytes, options: Any) -> None:
        self.energy.rx += len(value) * RX_J_PER_BYTE
        hand_up(self, self.links.written(value, options))

    def _set_notifying(self, on: bool) -> None:
        self.links.notifying = on
        if self._char is not None:
            self._char.emit_properties_changed({"Notifying": on})

    def _lost(self, device: str) -> None:
        peer = self.links.disconnected(device)
        if peer is not None and self.on_neighbour:
            self.on_neighbour(peer, False)


ROLES = ("central", "peripheral", "both")


class BleRadio:
    """One radio behind the `Radio` protocol that is a central (`BleakRadio`), a
    peripheral (`BluezPeripheral`) or both. A peer reached both ways (phones are both)
    is one neighbour, up while either link is; frames go out on every link (the router
    drops the duplicates, as BitChat's does)."""

    def __init__(self, peer_id: bytes, *, role: str = "both", service_uuid: str = SERVICE_UUID,
                 adapter: str | None = None, bus_address: str | None = None, **central: Any) -> None:
        if role not in ROLES:
            raise InvalidArgumentError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.peer_id = bytes(peer_id)
        self.energy = Energy()
        self.on_frame: Callable[[bytes, bytes], None] | None = None
        self.on_neighbour: Callable[[bytes, bool], None] | None = None
        self.parts: dict[str, Any] = {}
        if role in ("central", "both"):
            self.parts["central"] = BleakRadio(peer_id, service_uuid=service_uuid, adapter=adapter, **central)
        if role in ("peripheral", "both"):
            self.parts["peripheral"] = BluezPeripheral(peer_id, service_uuid=service_uuid, adapter=adapter,
                                                       bus_address=bus_address)
        self._up: dict[bytes, set[str]] = {}
        for name, part in self.parts.items():
            part.energy = self.energy                    # one account for the radio
            part.on_frame = self._frame
            part.on_neighbour = lambda peer, up, name=name: self._neighbour(name, peer, up)

    def send(self, frame: bytes) -> None:
        for part in self.parts.values():
            part.send(frame)

    def neighbours(self) -> list[bytes]:
        return list(self._up)

    def link_quality(self, peer: bytes) -> float:
        return max(part.link_quality(peer) for part in self.parts.values())

    async def start(self) -> None:
        """Start every role; if one cannot start, the others are stopped and its error raised."""
        started = []
        try:
            for part in self.parts.values():
                await part.start()
                started.append(part)
        except BaseException:
            for part in started:
                await part.stop()
            raise

    async def stop(self) -> None:
        for part in self.parts.values():
            await part.stop()

    def _frame(self, frame: bytes, link: bytes) -> None:
        if self.on_frame:
            self.on_frame(frame, link)

    def _neighbour(self, role: str, peer: bytes, up: bool) -> None:
        roles = self._up.setdefault(peer, set())
        was = bool(roles)
        (roles.add if up else roles.discard)(role)
        if not roles:
            del self._up[peer]
        if was != bool(roles) and self.on_neighbour:
            self.on_neighbour(peer, up)
