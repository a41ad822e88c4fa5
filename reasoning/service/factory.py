"""The one place jobs build their sandbox and grader: local, or remote ``verimath serve``.

A job config's ``sandbox`` / ``grader`` section is a :class:`SandboxSettings` /
:class:`GraderSettings`: the local config plus ``endpoints`` (and how to reach them). With no
endpoints, :func:`make_sandbox` / :func:`make_grader` build the local
:class:`~verimath.reasoning.sandbox.Sandbox` / :class:`~verimath.reasoning.grading.Grader`; with
endpoints, the drop-in :class:`~verimath.reasoning.service.client.RemoteSandbox` /
:class:`~verimath.reasoning.service.client.RemoteGrader`. YAML::

    sandbox:
      timeout_s: 5
      endpoints: [http://cpu-node-1:8000, http://cpu-node-2:8000]
      api_key_file: ~/.verimath_key   # or $VERIMATH_API_KEY; the key never goes into a config
    grader:
      endpoints: [http://cpu-node-1:8000]
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from verimath.reasoning.grading import GraderConfig
from verimath.reasoning.sandbox import SandboxConfig

API_KEY_ENV = "VERIMATH_API_KEY"


def _check_remote(endpoints: tuple[str, ...], retries: int) -> None:
    if isinstance(endpoints, str) or not all(isinstance(u, str) for u in endpoints):
        raise ValueError("endpoints must be a list of URLs, e.g. [http://127.0.0.1:8000]")
    for u in endpoints:
        if not u.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {u!r} must start with http:// or https://")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")


@dataclass(frozen=True)
class SandboxSettings(SandboxConfig):
    """:class:`~verimath.reasoning.sandbox.SandboxConfig` plus where to run (module docstring).

    Attributes:
        endpoints: ``verimath serve`` base URLs; empty: run locally.
        api_key_file: file whose first line is the bearer token; None: ``$VERIMATH_API_KEY``
            (or no auth when unset).
        retries: extra tries of a request (other endpoints first) before its programs are
            ``SANDBOX_ERROR``.
    """

    endpoints: tuple[str, ...] = ()
    api_key_file: str | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_remote(self.endpoints, self.retries)


@dataclass(frozen=True)
class GraderSettings(GraderConfig):
    """:class:`~verimath.reasoning.grading.GraderConfig` plus where to grade.

    Fields as :class:`SandboxSettings`; after the retries a pair's verdict is ``ERROR``.
    """

    endpoints: tuple[str, ...] = ()
    api_key_file: str | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_remote(self.endpoints, self.retries)


def _base(cfg: Any, cls: type) -> Any:
    """``cfg`` as a plain ``cls`` (the fields ``cls`` has)."""
    if type(cfg) is cls:
        return cfg
    return cls(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cls)})


def api_key(cfg: Any) -> str | None:
    """The bearer token for ``cfg``'s endpoints: ``api_key_file``, else ``$VERIMATH_API_KEY``.

    Raises:
        OSError: the key file cannot be read. ValueError: it is empty.
    """
    path = getattr(cfg, "api_key_file", None)
    if path:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            key = f.readline().strip()
        if not key:
            raise ValueError(f"{path}: the API key file is empty")
        return key
    return os.environ.get(API_KEY_ENV) or None


def make_sandbox(cfg: SandboxConfig | None = None) -> Any:
    """A local :class:`~verimath.reasoning.sandbox.Sandbox`, or a RemoteSandbox with ``endpoints``.

    Both are context managers with ``run``/``run_many``/``submit``/``session``/``isolation``.

    Raises:
        SandboxError: the local sandbox cannot start, or no endpoint answers ``/health``.
    """
    cfg = cfg or SandboxConfig()
    endpoints = tuple(getattr(cfg, "endpoints", ()) or ())
    if endpoints:
        from verimath.reasoning.service.client import RemoteSandbox

        return RemoteSandbox(endpoints, config=_base(cfg, SandboxConfig), api_key=api_key(cfg),
                             retries=getattr(cfg, "retries", 2))
    from verimath.reasoning.sandbox import Sandbox

    return Sandbox(_base(cfg, SandboxConfig))


def make_grader(cfg: GraderConfig | None = None) -> Any:
    """A local :class:`~verimath.reasoning.grading.Grader`, or a RemoteGrader with ``endpoints``.

    Both are context managers with ``grade``/``grade_many``/``grade_iter``.

    Raises:
        GraderUnavailable: a local worker cannot start. SandboxError: no endpoint answers.
    """
    cfg = cfg or GraderConfig()
    endpoints = tuple(getattr(cfg, "endpoints", ()) or ())
    if endpoints:
        from verimath.reasoning.service.client import RemoteGrader

        return RemoteGrader(endpoints, config=_base(cfg, GraderConfig), api_key=api_key(cfg),
                            retries=getattr(cfg, "retries", 2))
    from verimath.reasoning.grading import Grader

    return Grader(_base(cfg, GraderConfig))
