r"""Gold-answer extraction: the one function that turns a dataset's answer field into a gold string.

Used by the loader (:mod:`verimath.datasets`, at load time, so a record without a usable gold
is a load error before any generation) and by the grader (:mod:`verimath.reasoning.grading` through
:func:`verimath.reasoning.extract.extract_gold`, a re-export). Pure text, standard library only, so
the ``verimath`` core can use it without importing ``reasoning``. Extraction of *model
predictions* is a different job (untrusted, noisy text) and lives in
:mod:`verimath.reasoning.extract`.

What a gold value may be (``dataset="auto"``, the default):

=====================================  =============================================
value                                  gold
=====================================  =============================================
``18`` / ``27.0`` (JSON numbers)       ``"18"`` / ``"27"`` (integral floats lose ``.0``)
``["1", "2"]`` (a multi-answer set)    ``"1, 2"`` (each element extracted; math-verify
                                       compares it as a set); ``["$\frac12$"]`` -> ``\frac12``
a GSM8K solution ``... #### 1,234``    ``"1234"`` (the last ``####``; commas removed)
a MATH / Minerva solution              the last ``\boxed{}`` / ``\fbox{}``; text after the box
(``\boxed{1.6} \mathrm{~cm}``)         (units) is ignored
"... The answer is: 7" / "Final        the phrase after the last such marker
answer: ..."
a bare answer (one short line)         the line itself: ``"\frac{1}{2}"``, ``"$x=5$"`` -> ``x=5``
=====================================  =============================================

Cleaning keeps the mathematical content: ``$..$``-style wrappers, a trailing period, a
leading currency sign and units after a number (``9 (apples)``, ``5\text{ cm}``,
``18 dollars``) are removed; everything else is left to math-verify.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["GoldResult", "explain_gold", "extract_gold", "find_last_boxed"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_HASHES_RE = re.compile(r"####\s*")
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:is\b\s*:?|:)\s*", re.IGNORECASE
)
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|mathrm|textrm|mbox|mathbf)\s*\{[^{}]*\}")
_NUMBER = r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)"
_UNITS_RES = (  # a number followed by units: keep the number
    re.compile(rf"^({_NUMBER})\s*\\(?:text|mathrm|textrm|mbox)\s*"
               r"\{\s*~?\s*[A-Za-z][A-Za-z ]*\}$"),
    re.compile(rf"^({_NUMBER})\s*\(\s*[A-Za-z][A-Za-z ]*\)$"),  # ASDiv "9 (apples)"
    re.compile(rf"^({_NUMBER})\s+([A-Za-z][A-Za-z ]*)$"),  # "18 dollars"
)
_MATH_WORDS = frozenset(
    "pi infty inf oo sqrt sin cos tan cot sec csc log ln exp mod or and".split()
)
_PROSE_WORDS = frozenset(
    "is are was were the so we thus therefore hence then this that which because since get gives "
    "answer".split()
)
_MAX_BARE_WORDS = 6
_MAX_BARE_CHARS = 300


@dataclass(frozen=True, slots=True)
class GoldResult:
    """Outcome of :func:`explain_gold`.

    Attributes:
        answer: the gold answer string; None when none could be extracted.
        why: when ``answer`` is None, why not (for a load error); "" otherwise.
    """

    answer: str | None
    why: str = ""


def balanced_group(text: str, open_idx: int, stop: int | None = None) -> str | None:
    r"""Text inside the brace group opening at ``open_idx``; skips ``\{``, ``\}``, ``\\``.

    Linear in the scanned length. Shared with ``verimath.reasoning.extract`` (one brace matcher for
    gold and predicted answers).

    Args:
        text: the string.
        open_idx: index of the opening ``{``.
        stop: scan no further than this index (default: the end of the text).

    Returns:
        The group's content, or None when it does not close before ``stop``.
    """
    depth = 0
    i = open_idx
    n = len(text) if stop is None else stop
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_idx + 1 : i]
        i += 1
    return None


def find_last_boxed(text: str) -> str | None:
    r"""Content of the last complete ``\boxed{...}`` / ``\fbox{...}`` / ``\boxed 5``, stripped.

    Nested braces are matched. An unclosed box falls back to the previous complete one.
    Returns "" for an empty box and None when there is no box. Scans each box once from its
    brace, so the cost is linear in the text per box.
    """
    for m in reversed(list(_BOX_RE.finditer(text))):
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            content = balanced_group(text, i)
            if content is not None:
                return content.strip()
            continue
        j = i
        while j < len(text) and not text[j].isspace() and text[j] not in "$,;":
            j += 1
        token = text[i:j].rstrip(".")
        if token:
            return token
    return None


def _after_marker(text: str) -> str | None:
    """The phrase after the last "the answer is" / "final answer:" (a ``$..$`` or a sentence)."""
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        rest = text[m.end() : m.end() + 4000].lstrip().lstrip("*").lstrip()
        if rest.startswith("$"):
            end = rest.find("$", 1)
            if end > 1:
                return rest[1:end].strip()
        line = rest.split("\n", 1)[0]
        cut = re.search(r"\.\s+(?=[A-Z])|\.\s*$", line)
        if cut:
            line = line[: cut.start()]
        line = line.strip().rstrip("*").strip()
        if line:
            return line
    return None


def _is_bare(text: str) -> bool:
    r"""One line, at most 300 characters and 6 plain words (outside ``\text{}``), none prose."""
    if "\n" in text or len(text) > _MAX_BARE_CHARS:
        return False
    words = _WORD_RE.findall(_TEXT_CMD_RE.sub(" ", text))
    return len(words) <= _MAX_BARE_WORDS and not any(w.lower() in _PROSE_WORDS for w in words)


def _clean(ans: str) -> str:
    """Strip presentation (wrappers, trailing period, currency, units after a number)."""
    s = ans.strip()
    changed = True
    while changed and s:
        changed = False
        for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) > len(open_) + len(close) and s.startswith(open_) and s.endswith(close):
                inner = s[len(open_) : -len(close)]
                if open_ == "$" and "$" in inner:
                    continue  # "$1$ and $2$": two groups, not one
                s, changed = inner.strip(), True
        if s.endswith("."):
            s, changed = s[:-1].rstrip(), True
    if s.count("$") == 1:
        s = re.sub(r"^\\?\$\s*(?=[-+]?\d)", "", s)
    for pat in _UNITS_RES:
        m = pat.match(s)
        if m and (pat is not _UNITS_RES[2]
                  or all(w.lower() not in _MATH_WORDS for w in m.group(2).split())):
            s = m.group(1)
            break
    return s.strip()


def _from_number(value: int | float) -> GoldResult:
    if isinstance(value, float):
        if not math.isfinite(value):
            return GoldResult(None, f"not a finite number: {value!r}")
        if value.is_integer():
            return GoldResult(str(int(value)))
        return GoldResult(repr(value))
    return GoldResult(str(value))


def _from_list(value: list[object] | tuple[object, ...], dataset: str) -> GoldResult:
    if not value:
        return GoldResult(None, "an empty list of answers")
    parts: list[str] = []
    for i, v in enumerate(value):
        r = explain_gold(v, dataset)
        if r.answer is None:
            return GoldResult(None, f"list element {i}: {r.why}")
        if r.answer not in parts:
            parts.append(r.answer)
    return GoldResult(", ".join(parts))


def _from_text(text: str, dataset: str) -> GoldResult:
    s = text.strip()
    if not s:
        return GoldResult(None, "an empty string")
    ds = dataset.lower().replace("-", "").replace("_", "")
    if ds == "gsm8k" or (ds == "auto" and "####" in s):
        ms = list(_HASHES_RE.finditer(s))
        if not ms:
            return GoldResult(None, "no '#### N' line (GSM8K format)")
        line = s[ms[-1].end() :].split("\n", 1)[0].strip().replace(",", "")
        return GoldResult(line or None, "" if line else "nothing after '####'")
    boxed = find_last_boxed(s)
    if boxed is not None:
        ans = _clean(boxed)
        return GoldResult(ans or None, "" if ans else "an empty \\boxed{}")
    marked = _after_marker(s)
    if marked:
        return GoldResult(_clean(marked) or None, "")
    if ds in ("math", "math500"):
        return GoldResult(None, "no \\boxed{} and no 'The answer is' (MATH format)")
    if _is_bare(s):
        ans = _clean(s)
        return GoldResult(ans or None, "" if ans else "nothing left after cleaning")
    return GoldResult(None, "no \\boxed{}, '#### N' or 'The answer is' in a solution text, and "
                            "too long or too wordy to be a bare answer")


def explain_gold(value: object, dataset: str = "auto") -> GoldResult:
    r"""Extract the gold answer of one record's answer field, saying why when there is none.

    Args:
        value: the field's value as read from JSON / Parquet / the hub: a string (a solution or
            a bare answer), an int or float, or a list of those (a multi-answer set).
        dataset: ``"auto"`` (see the module docstring), ``"gsm8k"`` (only the text after the
            last ``####``, commas removed) or ``"math"`` / ``"math500"`` (the last box, else
            "The answer is"; a bare answer is not accepted).

    Returns:
        GoldResult with the answer, or None and the reason.

    Raises:
        ValueError: on an unknown ``dataset``.
    """
    if dataset.lower().replace("-", "").replace("_", "") not in ("auto", "gsm8k", "math",
                                                                  "math500"):
        raise ValueError(f"unknown dataset {dataset!r}: use 'gsm8k', 'math500', 'math' or 'auto'")
    if value is None:
        return GoldResult(None, "null")
    if isinstance(value, bool):
        return GoldResult(None, f"a boolean ({value}) is not an answer")
    if isinstance(value, int | float):
        return _from_number(value)
    if isinstance(value, list | tuple):
        return _from_list(value, dataset)
    if isinstance(value, str):
        return _from_text(value, dataset)
    return GoldResult(None, f"a {type(value).__name__}, not a string, number or list")


def extract_gold(solution: object, dataset: str = "auto") -> str | None:
    r"""The gold final answer of a reference solution or answer field (:func:`explain_gold`).

    Args:
        solution: a solution text, a bare answer, a number or a list of answers.
        dataset: ``"auto"`` | ``"gsm8k"`` | ``"math"`` | ``"math500"``.

    Returns:
        The answer string, or None when the value has none.

    Raises:
        ValueError: on an unknown ``dataset``.
    """
    return explain_gold(solution, dataset).answer
