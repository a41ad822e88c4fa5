from dataclasses import dataclass, field

import pytest

from verimath.config import ConfigError, load_config


@dataclass(frozen=True)
class Inner:
    timeout_s: float = 1.0

    def __post_init__(self):
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0; use e.g. 5")


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    ks: tuple[int, ...] = (1,)
    inner: Inner = field(default_factory=Inner)


def test_yaml_then_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: a\ninner:\n  timeout_s: 2\n")
    cfg = load_config(Outer, y, ["inner.timeout_s=3.5", "ks=[1, 8]"])
    assert cfg == Outer(name="a", ks=(1, 8), inner=Inner(3.5))


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="bogus"):
        load_config(Outer, None, ["bogus=1"])
    with pytest.raises(ConfigError, match="inner"):
        load_config(Outer, None, ["inner.nope=1"])


def test_post_init_message_surfaces():
    with pytest.raises(ConfigError, match="timeout_s must be > 0"):
        load_config(Outer, None, ["inner.timeout_s=0"])


def test_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, None, ["justakey"])
