"""Battery and temperature: the ``PowerSource`` interface and its two sources.

``SysfsPowerSource`` reads Linux's ``/sys/class/power_supply/*/capacity`` (percent, of the
first supply of type Battery) and ``status`` (Charging / Discharging / Full), and the
hottest ``/sys/class/thermal/thermal_zone*/temp`` (millidegrees Celsius). A host without a
battery reports ``battery_percent=None`` (treated as mains power). ``PushedPowerSource`` is
for hosts that learn these values elsewhere (mobile OS callbacks, tests): they push them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from betanet.errors import InvalidArgumentError

__all__ = ["PowerState", "PowerSource", "SysfsPowerSource", "PushedPowerSource", "NoPowerSource",
           "constrained"]


@dataclass(frozen=True)
class PowerState:
    battery_percent: float | None = None     # None: no battery (mains)
    charging: bool | None = None
    temperature_c: float | None = None


class PowerSource(Protocol):
    def read(self) -> PowerState: ...


def constrained(state: PowerState, battery_threshold: float, thermal_limit: float) -> str | None:
    """Why the energy policy applies ("battery" / "thermal"), or None. Charging lifts the
    battery condition."""
    if state.battery_percent is not None and state.battery_percent < battery_threshold \
            and not state.charging:
        return "battery"
    if state.temperature_c is not None and state.temperature_c > thermal_limit:
        return "thermal"
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


class SysfsPowerSource:
    def __init__(self, root: str = "/sys") -> None:
        self.root = root

    def read(self) -> PowerState:
        battery = charging = temp = None
        ps = os.path.join(self.root, "class", "power_supply")
        for name in sorted(os.listdir(ps)) if os.path.isdir(ps) else []:
            d = os.path.join(ps, name)
            if _read(os.path.join(d, "type")) != "Battery":
                continue
            cap = _read(os.path.join(d, "capacity"))
            if cap is not None and cap.lstrip("-").isdigit():
                battery = max(0.0, min(100.0, float(cap)))
                status = _read(os.path.join(d, "status"))
                charging = status in ("Charging", "Full") if status else None
                break
        th = os.path.join(self.root, "class", "thermal")
        for name in sorted(os.listdir(th)) if os.path.isdir(th) else []:
            if not name.startswith("thermal_zone"):
                continue
            t = _read(os.path.join(th, name, "temp"))
            if t is not None and t.lstrip("-").isdigit():
                c = int(t) / 1000.0
                temp = c if temp is None else max(temp, c)
        return PowerState(battery, charging, temp)


class PushedPowerSource:
    """Values pushed by the host: ``push(battery_percent=..., charging=..., temperature_c=...)``."""

    def __init__(self) -> None:
        self._state = PowerState()

    def push(self, *, battery_percent: float | None = None, charging: bool | None = None,
             temperature_c: float | None = None) -> None:
        if battery_percent is not None and not 0 <= battery_percent <= 100:
            raise InvalidArgumentError(f"battery_percent must be in [0, 100], got {battery_percent!r}")
        self._state = PowerState(battery_percent, charging, temperature_c)

    def read(self) -> PowerState:
        return self._state


class NoPowerSource:
    def read(self) -> PowerState:
        return PowerState()
