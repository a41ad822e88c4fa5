"""Few-shot prompt files of the model-facing datagen stages (``datagen/prompts/*.yaml``).

A file has ``system`` (optional), ``few_shot`` (``[{user, assistant}]``, optional) and ``user``, a
template with ``{name}`` placeholders filled by :meth:`ChatTemplate.messages`. The template's
hash (sha256 of its content, 16 hex chars) goes into provenance and stage fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ChatTemplate:
    """A loaded prompt file."""

    name: str
    system: str
    user: str
    few_shot: tuple[tuple[str, str], ...]
    hash: str

    @property
    def fields(self) -> set[str]:
        """Placeholder names used by ``user``."""
        return {f for _, f, _, _ in string.Formatter().parse(self.user) if f}

    def messages(self, **values: str) -> list[dict[str, str]]:
        """Chat messages: system, few-shot turns, then ``user`` filled with ``values``.

        Raises:
            KeyError: a placeholder has no value.
        """
        msgs: list[dict[str, str]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        for u, a in self.few_shot:
            msgs.append({"role": "user", "content": u})
            msgs.append({"role": "assistant", "content": a})
        msgs.append({"role": "user", "content": self.user.format(**values)})
        return msgs


def load_template(path: str | Path, required: tuple[str, ...] = ()) -> ChatTemplate:
    """Load a prompt file.

    Args:
        path: the YAML file.
        required: placeholders ``user`` must contain.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no ``user`` string, or a required placeholder is missing (names it).
    """
    import yaml

    p = Path(path)
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    user = raw.get("user")
    if not isinstance(user, str):
        raise ValueError(f"{p}: field 'user' must be a string template")
    shots = tuple((str(s["user"]), str(s["assistant"])) for s in raw.get("few_shot") or ())
    system = str(raw.get("system") or "").strip()
    body = {"system": system, "user": user, "few_shot": shots}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    tpl = ChatTemplate(str(raw.get("name", p.stem)), system, user, shots, digest)
    missing = [f for f in required if f not in tpl.fields]
    if missing:
        raise ValueError(f"{p}: 'user' must contain the placeholder(s) "
                         + ", ".join("{" + f + "}" for f in missing))
    return tpl
