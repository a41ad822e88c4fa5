"""One CLI pattern for every job: a YAML preset under ``configs/`` plus ``key=value`` overrides.

``load_config(MyConfig, "configs/eval/demo.yaml", ["n=4", "sampling.temperature=0.7"])``
builds the dataclass. Override strings are parsed with YAML rules (``n=4`` is an int); every
value, from the file or an override, is then type-checked against the dataclass field with
pydantic in strict mode, so ``seed=abc``, ``top_p=yes`` (YAML's True) or ``temperature: "0.7"``
(a quoted string) are refused with the key, the value and the expected type, instead of being
coerced. Command-line flags (``--split no``) are applied with their argparse type, never
re-read as YAML. The dataclass's own ``__post_init__`` then rejects out-of-range values with a
message that says how to fix them.

Preset paths ``configs/<job>/<name>.yaml`` resolve against the working directory first and then
against the presets installed with the package (``verimath/_configs``), so they work after
``pip install`` too (:func:`resolve_preset`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import typing
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        nxt = cur.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} is not a section")
        cur = nxt
    cur[keys[-1]] = value


def _type_name(typ: Any) -> str:
    if isinstance(typ, type) and not typing.get_args(typ):
        return typ.__name__
    return str(typ).replace("typing.", "").replace("NoneType", "None")


_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _yaml11_float(typ: Any, val: Any) -> Any:
    """``val`` as a float when it is exponent text (``3e-4``) and ``typ`` takes a float, not str.

    YAML 1.1 (PyYAML) reads ``1e-5`` -- no dot, or no exponent sign -- as a string, both in
    files and in ``key=value`` overrides; every other spelling of a number it reads itself.
    """
    if not isinstance(val, str) or not _FLOAT_TEXT.fullmatch(val.strip()):
        return val
    accepted = typing.get_args(typ) if typing.get_origin(typ) in (typing.Union, UnionType) \
        else (typ,)
    if float in accepted and str not in accepted:
        return float(val)
    return val


def _check_value(typ: Any, val: Any, where: str) -> Any:
    """``val`` validated against ``typ`` (pydantic, strict JSON rules); raises ConfigError."""
    import pydantic

    if typing.get_origin(typ) is tuple and not isinstance(val, list | tuple):
        val = [val]  # a single value for a list setting: ``k: 1``
    val = _yaml11_float(typ, val)
    try:
        return pydantic.TypeAdapter(typ).validate_json(
            json.dumps(val, default=str), strict=True)
    except pydantic.ValidationError as e:
        err = e.errors()[0]
        detail = err["msg"] + (f" (at item {err['loc'][0]})" if err["loc"] else "")
        if isinstance(val, bool):
            detail += "; YAML reads yes/no/on/off as booleans: quote the value if you mean text"
        raise ConfigError(f"{where}: got {val!r} ({type(val).__name__}), expected "
                          f"{_type_name(typ)}: {detail}") from None
    except (TypeError, ValueError, pydantic.PydanticSchemaGenerationError):
        return val  # a type pydantic cannot check: left to __post_init__


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        val = data[f.name]
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            if not isinstance(val, dict):
                raise ConfigError(f"{where}.{f.name}: got {val!r}, expected a mapping of "
                                  f"{typ.__name__} settings")  # type: ignore[union-attr]
            val = _build(typ, val, f"{where}.{f.name}")  # type: ignore[arg-type]
        else:
            val = _check_value(typ, val, f"{where}.{f.name}")
        kwargs[f.name] = val
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def resolve_preset(path: str | os.PathLike[str]) -> Path:
    """A config path as given if it exists, else the preset shipped in the package.

    ``configs/eval/demo.yaml`` (or ``eval/demo.yaml``) not found relative to the working
    directory resolves to ``verimath/_configs/eval/demo.yaml`` of the installed package.

    Raises:
        FileNotFoundError: neither exists; the message lists the shipped presets.
    """
    p = Path(path)
    if p.exists():
        return p
    parts = p.parts[1:] if p.parts[:1] == ("configs",) else p.parts
    shipped = packaged_configs()
    if shipped is not None and parts and not p.is_absolute():
        cand = shipped.joinpath(*parts)
        if cand.exists():
            return cand
    names = sorted(str(q.relative_to(shipped)) for q in shipped.rglob("*.yaml")) \
        if shipped is not None else []
    raise FileNotFoundError(f"config {str(path)!r} not found (shipped presets: "
                            f"{', '.join('configs/' + n for n in names) or 'none'})")


def packaged_configs() -> Path | None:
    """The presets folder: ``configs/`` of a source checkout, or the copy shipped in the wheel.

    A checkout (``configs/`` next to the ``verimath`` package) wins, so editing a preset in
    the repository takes effect without reinstalling; None if neither exists.
    """
    here = Path(__file__).resolve().parent
    checkout = here.parent / "configs"
    if checkout.is_dir() and (here.parent / "pyproject.toml").is_file():
        return checkout
    shipped = here / "_configs"
    return shipped if shipped.is_dir() else None


def load_config(
    cls: type[T], path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> T:
    """Build config dataclass ``cls`` from an optional YAML file and ``key=value`` overrides.

    Args:
        cls: a (possibly nested) dataclass type.
        path: YAML file (a ``configs/...`` preset resolves to the shipped copy when not found
            locally, see :func:`resolve_preset`); None means the dataclass defaults.
        overrides: ``dotted.key=value`` strings; values are parsed as YAML scalars/lists.
        values: ``{dotted.key: value}`` applied as given, before ``overrides`` (CLI flags,
            already typed by argparse: ``--split no`` stays the string ``"no"``).

    Raises:
        ConfigError: unknown keys, malformed overrides, a value of the wrong type (names the
            key, the value and the expected type), or a value ``__post_init__`` rejects.
        FileNotFoundError: ``path`` does not exist (locally or as a shipped preset).
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        path = resolve_preset(path)
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        data = loaded
    for k, v in (values or {}).items():
        _set_path(data, k, v)
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r}: expected key=value")
        k, v = ov.split("=", 1)
        _set_path(data, k.strip(), yaml.safe_load(v) if v.strip() else "")
    return _build(cls, data, str(path or cls.__name__))


def config_from_args(
    cls: type[T], args: Any, flags: dict[str, str], extra: list[str] | None = None
) -> T:
    """Build a job config from a parsed CLI: ``--config`` YAML, then flags, then overrides.

    Args:
        cls: the job's config dataclass.
        args: an ``argparse.Namespace`` with ``config`` and ``overrides`` attributes.
        flags: argument attribute -> dotted config key; flags left at None are not applied.
        extra: more ``key=value`` overrides derived from flags (applied before ``overrides``).

    Flags keep the type argparse gave them (they are not re-read as YAML); ``extra`` and the
    positional overrides are ``key=value`` strings parsed as YAML.

    Raises:
        ConfigError, FileNotFoundError: as :func:`load_config`.
    """
    values = {key: getattr(args, flag) for flag, key in flags.items()
              if getattr(args, flag, None) is not None}
    overrides = list(extra or []) + list(getattr(args, "overrides", None) or [])
    return load_config(cls, getattr(args, "config", None), overrides, values)
