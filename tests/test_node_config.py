"""betanet.node config (YAML, defaults, errors naming the key) and power sources."""
from __future__ import annotations

import pytest
import yaml

from betanet.errors import InvalidArgumentError
from betanet.node import config
from betanet.node.config import ConfigError
from betanet.node.power import PowerState, PushedPowerSource, SysfsPowerSource, constrained


def test_defaults_for_every_key_and_rendered_file_loads(tmp_path):
    p = tmp_path / "node.yaml"
    p.write_text(config.render_default())
    cfg = config.load(p)
    for section, keys in config.SCHEMA.items():
        for k, key in keys.items():
            if (section, k) not in (("application", "data_dir"),):
                assert cfg[section][k] == key.default
    assert cfg["application"]["data_dir"] == str(tmp_path) + "/."


def test_empty_file_is_all_defaults(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("")
    assert config.load(p)["routing"]["qos"] == "balanced"


@pytest.mark.parametrize("data, match", [
    ({"routing": {"deadline_ms": "soon"}}, r"routing\.deadline_ms must be an integer"),
    ({"routing": {"deadline_ms": 0}}, r"routing\.deadline_ms must be >= 1"),
    ({"routing": {"qos": "fastest"}}, r"routing\.qos must be one of"),
    ({"transport": {"mesh": "yes"}}, r"transport\.mesh must be true or false"),
    ({"transport": {"chunk_size": True}}, r"transport\.chunk_size must be an integer"),
    ({"transport": {"htx_listen": "localhost"}}, r"transport\.htx_listen must be host:port"),
    ({"platform": {"battery_threshold": 150}}, r"platform\.battery_threshold must be <= 100"),
    ({"network": {"peers": "a.rec"}}, r"network\.peers must be a list"),
    ({"network": {"peers": [1]}}, r"network\.peers must be a list of strings"),
    ({"routing": {"deadlin_ms": 5}}, r"unknown key routing\.deadlin_ms"),
    ({"radio": {}}, r"unknown section 'radio'"),
    ({"routing": [1, 2]}, r"section routing must be a mapping"),
    ([1, 2], r"top level must be a mapping"),
])
def test_bad_config_names_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        config.from_dict(data)


def test_bad_yaml_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("routing: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(p)
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "missing.yaml")
    assert issubclass(ConfigError, InvalidArgumentError)


def test_ints_accepted_for_floats():
    cfg = config.from_dict({"platform": {"thermal_limit": 50}})
    assert cfg["platform"]["thermal_limit"] == 50.0 and isinstance(cfg["platform"]["thermal_limit"], float)


def test_rendered_yaml_is_commented_and_parses():
    text = config.render_default()
    assert text.count("# ") >= sum(len(k) for k in config.SCHEMA.values())
    assert set(yaml.safe_load(text)) == set(config.SCHEMA)


def _sysfs(root, capacity="15", status="Discharging", temps=("41000", "47500")):
    bat = root / "class" / "power_supply" / "BAT0"
    bat.mkdir(parents=True)
    (bat / "type").write_text("Battery\n")
    (bat / "capacity").write_text(capacity + "\n")
    (bat / "status").write_text(status + "\n")
    ac = root / "class" / "power_supply" / "AC"
    ac.mkdir()
    (ac / "type").write_text("Mains\n")
    for i, t in enumerate(temps):
        z = root / "class" / "thermal" / f"thermal_zone{i}"
        z.mkdir(parents=True)
        (z / "temp").write_text(t + "\n")


def test_sysfs_power_source(tmp_path):
    _sysfs(tmp_path)
    s = SysfsPowerSource(str(tmp_path)).read()
    assert s == PowerState(15.0, False, 47.5)
    assert constrained(s, 20.0, 60.0) == "battery"
    assert constrained(PowerState(15.0, True, 30.0), 20.0, 60.0) is None      # charging
    assert constrained(PowerState(None, None, 70.0), 20.0, 60.0) == "thermal"


def test_sysfs_without_battery_or_with_garbage(tmp_path):
    assert SysfsPowerSource(str(tmp_path)).read() == PowerState()
    _sysfs(tmp_path, capacity="lots", temps=("hot",))
    assert SysfsPowerSource(str(tmp_path)).read() == PowerState()


def test_pushed_power_source():
    p = PushedPowerSource()
    assert p.read() == PowerState()
    p.push(battery_percent=5, charging=False)
    assert constrained(p.read(), 20, 45) == "battery"
    with pytest.raises(InvalidArgumentError):
        p.push(battery_percent=101)
