"""One CLI pattern for every job: a YAML preset under ``configs/`` plus ``key=value`` overrides.

``load_config(MyConfig, "configs/eval/demo.yaml", ["n=4", "sampling.temperature=0.7"])``
builds the dataclass, coercing override strings with YAML rules, and lets the dataclass's own
``__post_init__`` reject bad values with a message that says how to fix them.
"""

from __future__ import annotations

import dataclasses
import os
import typing
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
        if dataclasses.is_dataclass(typ) and isinstance(val, dict):
            val = _build(typ, val, f"{where}.{f.name}")  # type: ignore[arg-type]
        elif typing.get_origin(typ) is tuple and isinstance(val, list):
            val = tuple(val)
        kwargs[f.name] = val
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def load_config(
    cls: type[T], path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> T:
    """Build config dataclass ``cls`` from an optional YAML file and ``key=value`` overrides.

    Args:
        cls: a (possibly nested) dataclass type.
        path: YAML file; None means the dataclass defaults.
        overrides: ``dotted.key=value`` strings; values are parsed as YAML scalars/lists.

    Raises:
        ConfigError: unknown keys, malformed overrides, or a value ``__post_init__`` rejects.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        data = loaded
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

    Raises:
        ConfigError, FileNotFoundError: as :func:`load_config`.
    """
    overrides = [f"{key}={getattr(args, flag)}" for flag, key in flags.items()
                 if getattr(args, flag, None) is not None]
    overrides += list(extra or []) + list(getattr(args, "overrides", None) or [])
    return load_config(cls, getattr(args, "config", None), overrides)
