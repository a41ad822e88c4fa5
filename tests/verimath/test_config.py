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


@dataclass(frozen=True)
class Sampling:
    seed: int = 0
    top_p: float = 1.0
    temperature: float = 0.0
    split: str | None = None
    ks: tuple[int, ...] = (1,)
    inner: Inner = field(default_factory=Inner)


@pytest.mark.parametrize("override,key,shown,expected", [
    ("seed=abc", "seed", "'abc' (str)", "int"),
    ("seed=1.5", "seed", "1.5 (float)", "int"),
    ("top_p=yes", "top_p", "True (bool)", "float"),  # YAML 1.1 reads yes as True
    ('temperature="0.7"', "temperature", "'0.7' (str)", "float"),  # quoted: a string
    ("split=3", "split", "3 (int)", "str | None"),
    ("ks=[1, x]", "ks", "[1, 'x'] (list)", "tuple[int, ...]"),
    ("inner=5", "inner", "5", "a mapping"),
    ("inner.timeout_s=fast", "inner.timeout_s", "'fast' (str)", "float"),
])
def test_wrong_types_name_key_value_and_expected_type(override, key, shown, expected):
    with pytest.raises(ConfigError) as e:
        load_config(Sampling, None, [override])
    msg = str(e.value)
    assert f"Sampling.{key}: got {shown}" in msg and f"expected {expected}" in msg


def test_wrong_types_in_the_yaml_file_are_refused(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text('temperature: "0.7"\n')
    with pytest.raises(ConfigError, match=r"temperature: got '0.7' \(str\), expected float"):
        load_config(Sampling, y)


def test_right_types_pass_and_ints_are_accepted_as_floats():
    cfg = load_config(Sampling, None, ["seed=3", "top_p=1", "temperature=0.5", "ks=2",
                                       "split=null"])
    assert cfg == Sampling(seed=3, top_p=1.0, temperature=0.5, ks=(2,), split=None)
    assert load_config(Sampling, None, ["split='no'"]).split == "no"
    assert isinstance(cfg.top_p, float)


def test_cli_flags_keep_their_string_type():
    import argparse

    from verimath.config import config_from_args

    p = argparse.ArgumentParser()
    p.add_argument("--split")
    p.add_argument("--seed", type=int)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(["--split", "no", "--seed", "7"])
    args.config = None
    cfg = config_from_args(Sampling, args, {"split": "split", "seed": "seed"})
    assert cfg.split == "no" and cfg.seed == 7


def test_shipped_presets_resolve_outside_a_checkout(tmp_path, monkeypatch):
    from verimath.config import packaged_configs, resolve_preset

    monkeypatch.chdir(tmp_path)  # no configs/ here
    p = resolve_preset("configs/eval/demo.yaml")
    assert p.is_file() and p.parent.parent == packaged_configs()
    with pytest.raises(FileNotFoundError, match="configs/eval/demo.yaml"):
        resolve_preset("configs/eval/nope.yaml")


@dataclass(frozen=True)
class Rates:
    learning_rate: float = 1e-5
    warmup: float | None = None
    name: str | None = None
    steps: int = 1


def test_exponent_text_is_a_float_where_a_float_is_expected(tmp_path):
    # PyYAML (YAML 1.1) reads 3e-4 and 1e5 -- no dot or no exponent sign -- as strings.
    y = tmp_path / "c.yaml"
    y.write_text("learning_rate: 3e-4\nwarmup: 1E+1\nname: 2e5\n")
    cfg = load_config(Rates, y, ["warmup=5e-2"])
    assert cfg.learning_rate == 3e-4 and isinstance(cfg.learning_rate, float)
    assert cfg.warmup == 0.05
    assert cfg.name == "2e5"  # a str setting keeps the text
    with pytest.raises(ConfigError, match=r"steps: got '1e3' \(str\), expected int"):
        load_config(Rates, None, ["steps=1e3"])  # no silent int from exponent text
    with pytest.raises(ConfigError, match="learning_rate: got 'fast'"):
        load_config(Rates, None, ["learning_rate=fast"])
