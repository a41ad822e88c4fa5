r"""Final-answer extraction from model outputs, program outputs and gold solutions.

Pure string functions, linear in the input (no regex with nested quantifiers), safe to call on
untrusted text. Extraction only *finds* an answer; deciding whether it is right is
:mod:`verimath.reasoning.grading`'s job (math-verify, in worker processes).

Formats, in the priority :func:`extract_answer` tries them:

1. ``\boxed{...}`` / ``\fbox{...}``: the last box, together with the boxes right before it
   that are joined to it only by separators (``,``, "and", ``\quad``, ``$``): all of them
   form one answer, ``\boxed{1},\boxed{2}`` -> ``1, 2`` (a set, as math-verify reads it);
   "or" is not a separator (``\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}`` are two
   spellings of one answer: the last is taken);
2. "The answer is ..." / "Final answer: ..." (the last occurrence; a prose phrase such as
   "The largest $n$ is 34" is cut to what follows its last "is");
3. GSM8K's ``#### N`` (the last occurrence);
4. the whole text when it is a bare answer (one short line that reads as math, not prose:
   ``\frac{1}{2}``, ``x = 5``, ``(1, 2]``, ``18 dollars``; see :func:`is_bare_answer`);
5. the last LaTeX math group (``$..$``, ``\(..\)``, ``\[..\]``) when no plain number follows
   it, kept whole: relations (``x \geq 5``), matrices, intervals, tuples, equations;
6. the last number in the text (``1,000`` -> ``1000``; ``-3.5``; ``3/4``).

:func:`clean_answer` then removes presentation only: wrappers, units (``18 dollars``,
``5\text{ cm}``), thousands separators (``1,000``, ``56,\!01``, ``1{,}000``), unicode minus,
trailing punctuation and backslashes, and rewrites multiple-choice answers (``(C)``, ``C.``,
``\textbf{(C)}``) to their letter and mixed numbers (``3128 1/2``, ``2\frac{1}{4}``) to sums.

Inside the grader, math-verify's own extraction also runs on the raw text (in the worker
process, see :mod:`verimath.reasoning._grade_worker`); this module is what adds to it.
"""

from __future__ import annotations

import re

from verimath.gold import balanced_group, extract_gold  # one gold extractor, one brace matcher

__all__ = [
    "clean_answer",
    "extract_answer",
    "extract_box_run",
    "extract_boxed",
    "extract_gold",
    "extract_program_output",
    "find_choice",
    "is_bare_answer",
    "last_number",
    "mc_choice",
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
_MAX_BOXES = 32  # boxes joined into one answer at most
#: what may stand between two boxes of one answer ("\boxed{1},\boxed{2}", "$..$ and $..$")
_BOX_SEP_RE = re.compile(
    r"(?:\s|[,;&$]|\\quad|\\qquad|\\[,;:! ]|\\text\{\s*(?:and|,)?\s*\}|and\b)*"
)
_DELIM_RE = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_CLOSE = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_IS_RE = re.compile(r"\s(?:is|are|was|equals|be)\s+(?:equal\s+to\s+|exactly\s+|about\s+)?",
                    re.IGNORECASE)
_SINGLE_LETTER_CMD_RE = re.compile(
    r"^\\(?:mathcal|mathbf|mathrm|mathbb|textbf|text|textrm|mbox|mathit)\s*\{\s*(\(?[A-Za-z]\)?)\s*\}$"
)
_MC_RE = re.compile(r"^\(?([A-E])(?:\)|(?=[.:]\s|[.:]?$))[.:]?(?:\s+(.*))?$", re.DOTALL)
_OPERATORS = frozenset("+-*/^=_<>")
_ENV_RE = re.compile(r"\\(?:begin|end)\s*\{[A-Za-z*]*\}")
_MC_WRAP_RE = re.compile(
    r"^\\(?:textbf|text|mathrm|mathbf|mathcal|textrm|mbox)\s*\{\s*(\(?[A-E]\)?[.:]?)\s*\}\s*"
)
_CHOICE_RE = re.compile(
    r"\(([A-E])\)|\\text(?:bf)?\{\s*([A-E])\s*\}"
    r"|\b(?:option|choice|answer)\s+(?:is\s+)?\(?([A-E])\)?(?![A-Za-z])"
)
_MIXED_RE = re.compile(r"^([-+]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_MIXED_TEX_RE = re.compile(r"^([-+]?)(\d+)\s*\\[dt]?frac\s*\{(\d+)\}\s*\{(\d+)\}$")
_GROUPED_RE = re.compile(r"(?<=\d)(?:,\\!|\\!|\\,)(?=\d)")
_TEX_THOUSANDS_RE = re.compile(r"(?<=\d)\{,\}(?=\d{3}(?!\d))")
_PLAIN_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_TEXT_UNIT_RE = re.compile(
    r"(?<=[\d}])\s*\\(?:text|mbox|mathrm|textrm)\s*\{\s*[A-Za-z][A-Za-z.]*(?:\s+[A-Za-z.]+){0,2}\s*\}"
    r"(?:\^\{?[23]\}?)?$"
)


def _box_at(text: str, i: int, stop: int) -> tuple[str | None, int]:
    r"""The box whose argument starts at ``i``: ``(content, end)``; ``(None, brace)`` if unclosed.

    ``content`` is "" for an empty box. The group must close before ``stop``.
    """
    while i < stop and text[i] in " \t":
        i += 1
    if i < stop and text[i] == "{":
        content = balanced_group(text, i, stop)
        if content is None:
            return None, i
        return content.strip(), i + len(content) + 2
    # "\boxed 5": one token up to whitespace or a math delimiter
    j = i
    while j < stop and not text[j].isspace() and text[j] not in "$,;":
        j += 1
    token = text[i:j].rstrip(".")
    return (token, j) if token else ("", -1)  # -1: no argument at all


def _box_run(text: str) -> list[str] | None:
    r"""Contents of the last complete box and of the boxes joined to it only by separators.

    ``\boxed{1},\boxed{2} and \boxed{3}`` -> ``["1", "2", "3"]``; ``first \boxed{1}, then
    \boxed{2}`` -> ``["2"]``. None when there is no box; ``[""]`` for an empty last box.
    Linear time: a brace known never to close bounds every earlier scan, and each box of the
    run is scanned only up to the next one.
    """
    unclosed = len(text)  # leftmost brace known never to close: scans stop there
    run: list[tuple[int, str]] = []  # (start, content), in text order
    for m in reversed(list(_BOX_RE.finditer(text))):
        stop = run[0][0] if run else unclosed
        if m.end() >= stop:
            continue  # a box inside the box after it
        content, end = _box_at(text, m.end(), stop)
        if content is None:
            if run:
                break
            unclosed = end
            continue  # unclosed brace: try an earlier box
        if end < 0:
            continue
        if run and (not content or not _BOX_SEP_RE.fullmatch(text[end:stop])):
            break  # an empty box before the run is not part of the answer
        run.insert(0, (m.start(), content))
        if not content:
            break  # the last box is empty: a committed empty answer
        if len(run) >= _MAX_BOXES:
            break
    if not run:
        return None
    out: list[str] = []
    for _, c in run:
        if c not in out:
            out.append(c)
    return out


def _find_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed``/``\fbox``: "" for an empty box, None when no box."""
    unclosed = len(text)
    for m in reversed(list(_BOX_RE.finditer(text))):
        if m.end() >= unclosed:
            continue
        content, end = _box_at(text, m.end(), unclosed)
        if content is None:
            unclosed = end
            continue
        if end >= 0:
            return content
    return None


def boxes_only(text: str, limit: int = 16) -> str | None:
    r"""Only the complete boxes of ``text`` (``\boxed{a} \boxed{b}``), in order; None if none.

    What math-verify's own extraction may see of a completion that boxed its answer: the
    model committed to its boxes, so when they do not parse math-verify must not fall back to
    a ``$..$`` or a number elsewhere in the reasoning. At most the last ``limit`` boxes; linear
    time (an unclosed brace bounds every earlier scan).
    """
    out: list[str] = []
    unclosed = len(text)
    for m in reversed(list(_BOX_RE.finditer(text))):
        if m.end() >= unclosed:
            continue
        content, end = _box_at(text, m.end(), unclosed)
        if content is None:
            unclosed = end
            continue
        if end >= 0 and content:
            out.insert(0, content)
            if len(out) >= limit:
                break
    return " ".join(f"\\boxed{{{c}}}" for c in out) if out else None


def extract_box_run(text: str) -> list[str]:
    r"""Contents of the last run of boxes that form one answer (see the module docstring).

    ``\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}`` -> ``["(2, 2)", "(6, 2)"]``.
    Duplicates are dropped; ``[]`` when there is no box or the last box is empty.
    """
    run = _box_run(text)
    return run if run and run[-1] else []


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


def _anchored(text: str, start: int) -> str:
    """What follows an answer anchor at ``start`` (at most ``_MAX_PHRASE``; "**Answer:** 5")."""
    return text[start : start + _MAX_PHRASE].lstrip().lstrip("*").lstrip()


def _after_anchor(rest: str) -> str | None:
    r"""The answer phrase ``rest`` starts with: a ``$..$`` / ``\(..\)`` group or one sentence."""
    for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(open_):
            end = rest.find(close, len(open_))
            if end > len(open_):
                return rest[len(open_) : end].strip()
            break
    line = _first_sentence(rest).strip().rstrip("*").strip().rstrip(".").strip()
    return line or None


def _first_sentence(rest: str) -> str:
    """The first line of ``rest``, cut at ". " before a capital letter or at a final "."."""
    line = rest.split("\n", 1)[0]
    m = re.search(r"\.\s+(?=[A-Z])|\.\s*$", line)
    return line[: m.start()] if m else line


#: a final answer that offers alternatives: "7 or 8", "either $7$ or $8$", ``7 \lor 8``
_ALTERNATIVES_RE = re.compile(r"(?<![\\A-Za-z])(?:or|either)(?![A-Za-z])|\\lor\b|\\vee\b")


def offers_alternatives(answer: str | None) -> bool:
    """Whether an extracted answer names alternatives ("7 or 8"): one answer must be given.

    Such an answer is graded as what it says (math-verify reads "7 or 8" as the set
    ``{7, 8}``: right only against a gold that is that set), never reduced to one of its
    members (issue 18: a policy offering several answers must not collect the reward).
    """
    return bool(answer and _ALTERNATIVES_RE.search(answer))


def _alternatives_sentence(rest: str) -> str | None:
    """The sentence ``rest`` starts with when it offers alternatives, ``$`` delimiters dropped."""
    line = _first_sentence(rest)
    if not offers_alternatives(line) or len(_NUMBER_RE.findall(line)) + line.count("$") < 2:
        return None
    phrase = _DELIM_RE.sub(" ", line)
    phrase = re.sub(r"(?<![A-Za-z])either(?![A-Za-z])", " ", phrase)
    return re.sub(r"\s+", " ", phrase).strip().rstrip(".").strip() or None


def _answer_is(text: str) -> str | None:
    """The phrase after the last "the answer is" / "final answer:" (prose cut away).

    A phrase offering alternatives ("$7$ or $8$") is kept whole (:func:`offers_alternatives`).
    """
    for m in reversed(list(_ANSWER_IS_RE.finditer(text))):
        rest = _anchored(text, m.end())
        alt = _alternatives_sentence(rest)
        if alt:
            return clean_answer(alt)
        ans = _after_anchor(rest)
        if ans:
            return clean_answer(_unprose(ans))
    return None


def _unprose(phrase: str) -> str:
    r"""The answer inside an anchored phrase that is itself prose.

    "The largest $n$ is 34" -> "34" (what follows the last "is"); else the last math group
    or number; a phrase that is already a bare answer is returned unchanged.
    """
    if is_bare_answer(phrase) or not _WORD_RE.search(phrase):
        return phrase
    ms = list(_IS_RE.finditer(phrase))
    if ms:
        tail = phrase[ms[-1].end() :].strip()
        if tail and is_bare_answer(tail):
            return tail
    group = _last_math_group(phrase)
    if group is not None and not last_number(phrase[group[1] :]):
        return group[0]
    return last_number(phrase) or phrase


def _last_math_group(text: str) -> tuple[str, int] | None:
    r"""``(content, end)`` of the last ``$..$``/``$$..$$``/``\(..\)``/``\[..\]`` math group.

    One left-to-right pass over the delimiters (escaped ``\$`` skipped); groups whose content
    reads as prose (``$18 and gets $``: two currency signs) are skipped.
    """
    open_tok: str | None = None
    open_end = 0
    last: tuple[str, int] | None = None
    for m in _DELIM_RE.finditer(text):
        tok = m.group()
        if tok == "\\$":
            continue
        if open_tok is None:
            if tok in _CLOSE:
                open_tok, open_end = tok, m.end()
        elif tok == _CLOSE[open_tok]:
            content = text[open_end : m.start()].strip()
            if content and len(content) <= _MAX_PHRASE and _is_math(content):
                last = (content, m.end())
            open_tok = None
    return last


def _is_math(content: str) -> bool:
    r"""Whether a ``$..$`` group reads as math, not prose.

    Its plain words are short, math words or "and"/"or" (``19, 46, and 82``); ``$18 and gets
    $5`` (two currency signs) is prose.
    """
    words = _WORD_RE.findall(_ENV_RE.sub(" ", _TEXT_CMD_RE.sub(" ", content)))
    return len(words) <= 6 and all(
        len(w) <= 2 or w.lower() in _MATH_WORDS or w.lower() in ("and", "or") for w in words)


def _arith_rhs(group: str) -> str:
    r"""``3 \times 4 = 12`` -> ``12``: the number ending a chain of equalities with no letters."""
    if "=" not in group:
        return group
    lhs, _, rhs = group.rpartition("=")
    rhs = rhs.strip()
    if _NUMBER_RE.fullmatch(rhs) and not re.search(r"(?<!\\)\b[A-Za-z]", lhs.replace("\\", " \\")):
        return rhs
    return group


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
    s = ans.strip().replace("\u2212", "-")
    changed = True
    while changed and s:
        changed = False
        if s[-1] in ",;!:" or (s.endswith("\\") and not s.endswith("\\\\")):
            s = s[:-1].rstrip()
            changed = True
            continue
        for open_, close in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) > len(open_) + len(close) and s.startswith(open_) and s.endswith(close):
                inner = s[len(open_) : -len(close)]
                if "$" in open_ and "$" in inner:
                    continue  # "$1$ and $2$": two groups, not one (and "$$$$...": linear)
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
    return _clean_numbers(s.strip())


def _clean_numbers(s: str) -> str:
    r"""Separators, units, mixed numbers and single-letter wrappers (see :func:`clean_answer`)."""
    s = _TEXT_UNIT_RE.sub("", s).strip()
    s = _GROUPED_RE.sub("", s)
    s = _TEX_THOUSANDS_RE.sub("", s)
    if _PLAIN_THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    m = _SINGLE_LETTER_CMD_RE.match(s)
    if m:
        s = m.group(1)
    m = _MIXED_RE.match(s) or _MIXED_TEX_RE.match(s)
    if m and int(m.group(3)) < int(m.group(4)):
        sign, whole, num, den = m.groups()
        s = f"{sign}({whole}+\\frac{{{num}}}{{{den}}})" if sign == "-" else (
            f"{whole}+\\frac{{{num}}}{{{den}}}")
    mc = _MC_RE.match(s)
    if mc and not mc.group(2):
        s = mc.group(1)
    return s


def find_choice(text: str) -> str | None:
    r"""The last multiple-choice letter a solution commits to, or None.

    Looks for ``(C)``, ``\textbf{(C)}`` and "option/choice/answer (is) C" anywhere in the
    text (one regex pass, linear); for use when the gold answer is a choice letter.
    """
    last = None
    for m in _CHOICE_RE.finditer(text):
        last = next(g for g in m.groups() if g)
    return last


def mc_choice(ans: str | None) -> tuple[str, str | None] | None:
    r"""A multiple-choice answer as ``(letter, option text or None)``; None if it is not one.

    ``"C"``, ``"(C)"``, ``"C."``, ``"\textbf{(C)}"``, ``"\text{C}"`` -> ``("C", None)``;
    ``"C. x = 42"``, ``"(B) 17"`` -> ``("C", "x = 42")``, ``("B", "17")``. Letters A-E only.
    """
    if not ans:
        return None
    s = ans.strip()
    for _ in range(2):  # \textbf{(C)} x = 42 / \text{(C)}
        m = _MC_WRAP_RE.match(s)
        if not m:
            break
        s = m.group(1) + " " + s[m.end() :]
        s = s.strip()
    m = _MC_RE.match(s)
    if not m:
        return None
    text = (m.group(2) or "").strip().rstrip(".").strip()
    if text[:1] in _OPERATORS:  # "(C)+1", "C = 5": an expression, not an option's text
        return None
    return m.group(1), (text or None)


def extract_answer(text: str) -> str | None:
    r"""Extract the final answer from a completion, trying formats in priority order.

    Order: the last run of ``\boxed{}`` (joined with ``", "``) > last "the answer is ..." >
    last ``#### N`` > the whole text when it is a bare answer (:func:`is_bare_answer`) > the
    last math group when no number follows it > the last number (see the module docstring).
    A present but empty last ``\boxed{}`` is a committed empty answer: None, without falling
    back to later formats. Linear time in ``len(text)``.

    Args:
        text: a model completion (or a program's output, or a bare answer).

    Returns:
        The answer string after :func:`clean_answer`, or None when nothing was found.
    """
    if not text or not text.strip():
        return None
    run = _box_run(text)
    if run is not None:
        if not run[-1]:
            return None
        return ", ".join(c for c in (clean_answer(b) for b in run) if c) or None
    for finder in (_answer_is, _hashes):
        ans = finder(text)
        if ans:
            return ans
    if is_bare_answer(text):
        return clean_answer(text) or None
    group = _last_math_group(text)
    if group is not None and not last_number(text[group[1] :]):
        return clean_answer(_arith_rhs(group[0])) or None
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
