r"""Final-answer extraction from model outputs, program outputs and gold solutions.

Pure string functions, linear in the input (no regex with nested quantifiers), safe to call on
untrusted text. Extraction only *finds* an answer; deciding whether it is right is
:mod:`reasoning.grading`'s job (math-verify, in worker processes).

Formats, in the priority :func:`extract_answer` tries them:

1. ``\boxed{...}`` / ``\fbox{...}`` (the last one; nested braces; ``\boxed 5``);
2. "The answer is ..." / "Final answer: ..." (the last occurrence);
3. GSM8K's ``#### N`` (the last occurrence);
4. the whole text when it is a bare answer (one short line that reads as math, not prose:
   ``\frac{1}{2}``, ``x = 5``, ``(1, 2]``, ``18 dollars``; see :func:`is_bare_answer`);
5. the last number in the text (``1,000`` -> ``1000``; ``-3.5``; ``3/4``).
"""

from __future__ import annotations

import re

from verimath.gold import extract_gold  # the one gold extractor (loader and grader)

__all__ = [
    "clean_answer",
    "extract_answer",
    "extract_boxed",
    "extract_gold",
    "extract_program_output",
    "is_bare_answer",
    "normalize_answer",
]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is\b|:|=)\s*:?\s*", re.IGNORECASE
)
_HASHES_RE = re.compile(r"####\s*")
_NUMBER_RE = re.compile(
    r"(?<![\w.)\]}])(?:-(?=[\d.]))?"  # sign only when not a binary minus after a term
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?"
    r"|(?<![\w.])-?\.\d+"
)
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|mathrm|textrm|mbox|mathbf)\s*\{([^{}]*)\}")
_PROSE_WORDS = frozenset(
    "is are was were the so we get got it its thus therefore hence then this that there which "
    "answer final equals equal be by to of and with for from our has have gives since because "
    "total result solution value find found need not don know cannot can sure unsure idea "
    "unknown".split()
)
_NUM_UNITS_RE = re.compile(r"^([-+]?\d[\d,]*(?:\.\d+)?)\s*([A-Za-z][A-Za-z ]*)\.?$")
_MATH_WORDS = frozenset("pi infty inf oo sqrt sin cos tan cot sec csc log ln exp mod".split())
_MAX_PHRASE = 4000  # longest answer phrase looked at after an anchor (keeps scans linear)
_CURRENCY_RE = re.compile(r"^\\?\$\s*(?=[-+]?\d)")
_SCI_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)e([-+]?\d+)(?![\w.])")


def _find_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed``/``\fbox``: "" for an empty box, None when no box."""
    unclosed = len(text)  # leftmost brace known never to close: scans stop there (linear time)
    for m in reversed(list(_BOX_RE.finditer(text))):
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            content = _balanced(text, i, unclosed)
            if content is not None:
                return content.strip()
            unclosed = i
            continue  # unclosed brace: try an earlier box
        # "\boxed 5": one token up to whitespace or a math delimiter
        j = i
        while j < len(text) and not text[j].isspace() and text[j] not in "$,;":
            j += 1
        token = text[i:j].rstrip(".")
        if token:
            return token
    return None


def _balanced(text: str, open_idx: int, stop: int | None = None) -> str | None:
    r"""Text inside the brace group opening at ``open_idx``; skips ``\{``, ``\}``, ``\\``.

    None when the group does not close before ``stop`` (default: the end of the text).
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


def extract_boxed(text: str) -> str | None:
    r"""The content of the last ``\boxed{...}`` (or ``\fbox{...}``, ``\boxed 5``).

    Nested braces are matched (escaped ``\{``/``\}`` do not count), so
    ``\boxed{\frac{1}{2}}`` gives ``\frac{1}{2}``. An unclosed last box falls back to the
    previous complete one.

    Args:
        text: any text (model completion, gold solution).

    Returns:
        The stripped box content; None when there is no box or the last box is empty.
    """
    content = _find_boxed(text)
    return content or None


def _after_anchor(text: str, start: int) -> str | None:
    r"""The answer phrase starting at ``start``: a ``$..$`` / ``\(..\)`` group or one sentence."""
    rest = text[start : start + _MAX_PHRASE].lstrip().lstrip("*").lstrip()  # "**Answer:** 5"
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_):
            end = rest.find(close, len(open_))
            if end > len(open_):
                return rest[len(open_) : end].strip()
            break
    line = rest.split("\n", 1)[0]
    # cut at the end of the sentence: ". " followed by a capital letter or the end of line
    m = re.search(r"\.\s+(?=[A-Z])|\.\s*$", line)
    if m:
        line = line[: m.start()]
    line = line.strip().rstrip("*").strip().rstrip(".").strip()
    return line or None


def _answer_is(text: str) -> str | None:
    """The phrase after the last "the answer is" / "final answer:"."""
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        ans = _after_anchor(text, m.end())
        if ans:
            return clean_answer(ans)
    return None


def _hashes(text: str) -> str | None:
    """The rest of the line after the last ``####``."""
    ms = list(_HASHES_RE.finditer(text))
    if not ms:
        return None
    line = text[ms[-1].end() :].split("\n", 1)[0].strip().rstrip(".").strip()
    return clean_answer(line) or None


def last_number(text: str) -> str | None:
    """The last number in ``text`` with thousands separators removed (``"1,000"`` -> ``"1000"``).

    Recognises integers, decimals, ``-`` signs (not a binary minus as in ``3-5``) and simple
    fractions ``a/b``. None when the text has no number.
    """
    ms = list(_NUMBER_RE.finditer(text))
    if not ms:
        return None
    return ms[-1].group(0).replace(",", "")


def is_bare_answer(text: str) -> bool:
    r"""True when ``text`` is itself an answer rather than a solution to extract from.

    Heuristic (documented behaviour, not a parser): a single line of at most 300 characters,
    without ``\boxed``/``####``/"answer is" markers, with at most two plain words outside
    LaTeX commands and ``\text{}``, none of them prose ("is", "the", "so", "therefore", ...).
    ``"\frac{1}{2}"``, ``"x = 5"``, ``"(-\infty, 3]"``, ``"18 dollars"``, ``"\text{Evelyn}"``
    are bare; ``"So we get 5."`` and multi-line solutions are not.
    """
    s = text.strip()
    if not s or "\n" in s or len(s) > 300:
        return False
    if _BOX_RE.search(s) or "####" in s or _ANSWER_IS_RE.search(s):
        return False
    words = _WORD_RE.findall(_TEXT_CMD_RE.sub(" ", s))
    if len(words) > 2:
        return False
    return not any(w.lower() in _PROSE_WORDS for w in words)


def clean_answer(ans: str) -> str:
    r"""Strip presentation from an extracted answer, keeping its mathematical content.

    Removes surrounding ``$..$``, ``\(..\)``, ``\[..\]``, a trailing period, a leading
    currency sign (``$18``, ``\$18``), plain-word units after a number (``18 dollars`` ->
    ``18``), and rewrites a few Python spellings that programs print (``**`` -> ``^``,
    ``1e-05`` -> ``1\times10^{-05}``). Everything else is left to math-verify.
    """
    s = ans.strip()
    changed = True
    while changed and s:
        changed = False
        for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) > len(open_) + len(close) and s.startswith(open_) and s.endswith(close):
                inner = s[len(open_) : -len(close)]
                if open_ == "$" and "$" in inner:
                    continue  # "$1$ and $2$": two groups, not one
                s = inner.strip()
                changed = True
        if s.endswith("."):
            s = s[:-1].rstrip()
            changed = True
    if s.count("$") == 1:
        s = _CURRENCY_RE.sub("", s)
    m = _NUM_UNITS_RE.match(s)
    if m and all(len(w) > 1 and w.lower() not in _MATH_WORDS for w in m.group(2).split()):
        s = m.group(1)
    if "\\" not in s:
        s = s.replace("**", "^")
        s = _SCI_RE.sub(r"\1\\times10^{\2}", s)
    return s.strip()


def extract_answer(text: str) -> str | None:
    r"""Extract the final answer from a completion, trying formats in priority order.

    Order: last ``\boxed{}`` > last "the answer is ..." > last ``#### N`` > the whole text when
    it is a bare answer (:func:`is_bare_answer`) > the last number. A present but empty
    ``\boxed{}`` is a committed empty answer: None, without falling back to later formats.

    Args:
        text: a model completion (or a program's output, or a bare answer).

    Returns:
        The answer string after :func:`clean_answer`, or None when nothing was found.
    """
    if not text or not text.strip():
        return None
    boxed = _find_boxed(text)
    if boxed is not None:
        return clean_answer(boxed) or None
    for finder in (_answer_is, _hashes):
        ans = finder(text)
        if ans:
            return ans
    if is_bare_answer(text):
        return clean_answer(text) or None
    return last_number(text)


def extract_program_output(stdout: str) -> str | None:
    """A program-of-thought answer: the last non-empty line of its stdout, stripped.

    Returns None when stdout has no non-empty line.
    """
    for line in reversed(stdout.splitlines()):
        if line.strip():
            return line.strip()
    return None


_NORM_SUBS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"\\left|\\right|\\!|\\,|\\;|\\:|\\quad|\\qquad|\\displaystyle", ""),
        (r"\\[dt]frac", r"\\frac"),
        (r"\^\{?\\circ\}?|°", ""),
        (r"\\%|%", ""),
        (r"\{,\}", ","),
        (r"(?<=\d),(?=\d{3}(?!\d))", ""),  # thousands separators (no space after the comma)
        (r"\s+", ""),
    )
)


_DECIMAL_RE = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])")


def _drop_zeros(m: re.Match[str]) -> str:
    frac = m.group(2).rstrip("0")
    return m.group(1) + ("." + frac if frac else "")


def normalize_answer(ans: str | None) -> str | None:
    r"""A canonical string for grouping answers (maj@k) and for the grader's fast path.

    Applies :func:`clean_answer`, unwraps ``\text{}``-like commands, drops ``\left``/
    ``\right``/spacing commands, degree and percent signs, thousands separators, whitespace,
    and trailing zeros of decimals (``18.00`` -> ``18``). Two answers with the same key are
    the same answer; different keys may still be equivalent (``0.5`` vs ``\frac12``).
    Returns None for None or an empty answer.
    """
    if ans is None:
        return None
    s = clean_answer(ans)
    for _ in range(4):  # unwrap up to 4 levels of \text{\mathrm{...}}
        s, n = _TEXT_CMD_RE.subn(r"\1", s)
        if not n:
            break
    for pat, rep in _NORM_SUBS:
        s = pat.sub(rep, s)
    s = _DECIMAL_RE.sub(_drop_zeros, s)
    s = s.rstrip(".")
    return s or None
