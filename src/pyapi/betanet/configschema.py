"""Validation of the YAML configuration files (``betanet node``, ``betanet dtn node``):
a schema of sections of typed keys, a default for every key, unknown keys refused, errors
naming the key path (``routing.deadline_ms``, ``peers.links[1].address``).

A :class:`Key` whose ``item`` is a schema holds a list of mappings, each validated against
it (``REQUIRED`` marks item keys without a default).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Callable

from betanet.errors import InvalidArgumentError

__all__ = ["ConfigError", "Key", "REQUIRED", "in_range", "one_of", "endpoint", "str_list",
           "optional", "defaults", "validate", "load_yaml", "render"]


class ConfigError(InvalidArgumentError):
    """A configuration that does not validate (the message names the key)."""


REQUIRED = object()  # an item key that has no default


@dataclass(frozen=True)
class Key:
    type: type | tuple
    default: Any
    help: str
    check: Callable[[Any], str | None] | None = None
    item: dict[str, Key] | None = None   # list of mappings, each checked against this


def in_range(lo=None, hi=None):
    def check(v):
        if lo is not None and v < lo:
            return f"must be >= {lo}"
        if hi is not None and v > hi:
            return f"must be <= {hi}"
        return None
    return check


def one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}"


def endpoint(v):
    host, sep, port = str(v).rpartition(":")
    return None if sep and port.isdigit() and 0 <= int(port) < 65536 else "must be host:port"


def str_list(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def optional(check):
    """``check``, with the empty string meaning "off"."""
    return lambda v: None if v == "" else check(v)


Schema = dict[str, dict[str, Key]]


def defaults(schema: Schema) -> dict[str, dict[str, Any]]:
    return {s: {k: copy.deepcopy(key.default) for k, key in keys.items()} for s, keys in schema.items()}


def _tname(t) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            list: "a list"}.get(t, str(t))


def _value(key: Key, v: Any, path: str, source: str) -> Any:
    if key.type is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if isinstance(v, bool) and key.type is not bool or not isinstance(v, key.type):
        raise ConfigError(f"{source}: {path} must be {_tname(key.type)}, "
                          f"got {type(v).__name__} {v!r:.60}")
    if key.item is not None:
        v = [_mapping(key.item, x, f"{path}[{i}]", source) for i, x in enumerate(v)]
    problem = key.check(v) if key.check else None
    if problem:
        raise ConfigError(f"{source}: {path} {problem}, got {v!r:.60}")
    return v


def _mapping(keys: dict[str, Key], data: Any, path: str, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {path} must be a mapping, got {type(data).__name__} {data!r:.60}")
    out = {}
    for k, v in data.items():
        key = keys.get(k)
        if key is None:
            raise ConfigError(f"{source}: unknown key {path}.{k} (known: {', '.join(keys)})")
        out[k] = _value(key, v, f"{path}.{k}", source)
    for k, key in keys.items():
        if k not in out:
            if key.default is REQUIRED:
                raise ConfigError(f"{source}: {path}.{k} is required")
            out[k] = copy.deepcopy(key.default)
    return out


def validate(schema: Schema, data: Any, source: str = "config") -> dict[str, dict[str, Any]]:
    """Check a parsed config (sections of keys) against ``schema`` and fill in defaults."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    out = defaults(schema)
    for section, values in data.items():
        if section not in schema:
            raise ConfigError(f"{source}: unknown section {section!r} (known: {', '.join(schema)})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section} must be a mapping")
        for k, v in values.items():
            key = schema[section].get(k)
            if key is None:
                raise ConfigError(f"{source}: unknown key {section}.{k}")
            out[section][k] = _value(key, v, f"{section}.{k}", source)
    return out


def load_yaml(path: str) -> Any:
    import yaml
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def render(schema: Schema, cfg: dict[str, dict[str, Any]], header: list[str]) -> str:
    """Commented YAML with every key of ``schema`` set to its value in ``cfg``."""
    lines = list(header)
    for section, keys in schema.items():
        lines.append(f"\n{section}:")
        for k, key in keys.items():
            lines.append(f"  # {key.help}")
            for ik, ikey in (key.item or {}).items():
                d = "required" if ikey.default is REQUIRED else f"default {json.dumps(ikey.default)}"
                lines.append(f"  #   {ik}: {ikey.help} ({d})")
            lines.append(f"  {k}: {json.dumps(cfg[section][k])}")
    return "\n".join(lines) + "\n"
