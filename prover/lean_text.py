"""Lean 4 source text: comments, tokens, theorem statements, proof bodies, negation.

Nothing here runs Lean. These are the text-level pieces the proof audit and the datagen
stage need: strip comments and string literals before any keyword scan (so ``-- sorry`` does
not count and ``"sorry"`` cannot hide), split a formal statement into name / binders /
conclusion, normalize statements for comparison, and build the negation of a statement.

The parser is bracket-aware rather than a full Lean parser: it is exercised on all miniF2F and
ProofNet statements in ``../shared/data`` (tests/prover/test_lean_text.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Declaration keywords a formal statement may start with (after modifiers).
DECL_KEYWORDS = ("theorem", "lemma", "def", "abbrev", "example", "instance")
_MODIFIERS = ("noncomputable", "private", "protected", "nonrec")
_OPEN = {"(": ")", "[": "]", "{": "}", "⦃": "⦄", "⟨": "⟩"}
_CLOSE = {v: k for k, v in _OPEN.items()}
#: One Lean identifier-ish token: letters (incl. Greek, ℝ, subscripts), digits, _ ' ! ? and dots.
TOKEN_RE = re.compile(r"«[^»]*»|[^\W\d][\w'!?]*(?:\.(?:«[^»]*»|[\w'!?]+))*", re.UNICODE)
_IDENT_RE = re.compile(r"^[^\W\d][\w'!?]*(?:\.[^\W\d][\w'!?]*)*$", re.UNICODE)


class StatementError(ValueError):
    """A formal statement could not be parsed; the message says what is wrong."""


def mask_comments_and_strings(code: str, *, keep_strings: bool = False) -> str:
    """Replace comments (``--``, nested ``/- -/``, doc comments) and string literals by spaces.

    Lengths and newlines are kept, so positions (line, column) in the result match ``code``.

    Args:
        code: Lean source.
        keep_strings: leave ``"..."`` literals as they are (only comments are masked).

    Returns:
        ``code`` with every comment character (and, unless ``keep_strings``, every string
        literal character including the quotes) replaced by a space; newlines are kept.
        An unterminated block comment or string masks to the end of the text.
    """
    out = list(code)
    i, n = 0, len(code)

    def blank(a: int, b: int) -> None:
        for j in range(a, min(b, n)):
            if out[j] != "\n":
                out[j] = " "

    while i < n:
        c = code[i]
        if code.startswith("--", i):
            j = code.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif code.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if code.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif code.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            j = min(j + 1, n)
            if not keep_strings:
                blank(i, j)
            i = j
        else:
            i += 1
    return "".join(out)


def strip_comments(code: str) -> str:
    """``code`` without comments (string literals kept), trailing spaces of lines removed."""
    masked = mask_comments_and_strings(code, keep_strings=True)
    return "\n".join(line.rstrip() for line in masked.split("\n"))


def tokens(code: str) -> list[str]:
    """Identifier-like tokens of comment- and string-free ``code`` (dotted names kept whole)."""
    return TOKEN_RE.findall(mask_comments_and_strings(code))


_PROOF_MARKER = re.compile(r":=\s*(by)?\s*(sorry)?\s*$")


def drop_proof_marker(statement: str) -> str:
    """``statement`` without its trailing ``:=``, ``:= by`` or ``:= by sorry`` (right-stripped)."""
    return _PROOF_MARKER.sub("", statement.rstrip()).rstrip()


def normalize_statement(text: str) -> str:
    """Canonical text of a statement for comparison (statement pinning).

    Comments are removed, a trailing ``:= by`` / ``:= by sorry`` / ``:=`` is dropped, a
    leading ``lemma`` reads as ``theorem``, runs of whitespace become one space, and spaces
    next to brackets, commas and colons are removed. Whitespace-only differences therefore
    compare equal; any other token difference does not.
    """
    t = drop_proof_marker(strip_comments(text).strip())
    t = re.sub(r"^lemma\b", "theorem", t)
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"\s*([()\[\]{}⦃⦄⟨⟩,:])\s*", r"\1", t)
    return t


def _scan_depth0(code: str, start: int, stop_at: str) -> int | None:
    """Index of the first ``stop_at`` at bracket depth 0 in masked ``code`` from ``start``."""
    stack: list[str] = []
    i = start
    while i < len(code):
        c = code[i]
        if c in _OPEN:
            stack.append(c)
        elif c in _CLOSE:
            if not stack or stack[-1] != _CLOSE[c]:
                raise StatementError(f"unbalanced {c!r} at offset {i}")
            stack.pop()
        elif not stack and code.startswith(stop_at, i):
            if stop_at == ":" and code.startswith(":=", i):
                i += 2
                continue
            return i
        i += 1
    if stack:
        raise StatementError(f"unclosed {stack[-1]!r}")
    return None


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed formal statement ``[modifiers] <keyword> <name> <binders> : <conclusion>``.

    Attributes:
        keyword: ``theorem``, ``lemma``, ``def``, ...
        name: the declared name (e.g. ``mathd_algebra_10``); ``""`` for ``example``.
        binders: the binder text between name and the top-level colon (comments removed,
            may be ``""``).
        conclusion: the type after the top-level colon (comments removed).
        modifiers: leading modifiers such as ``noncomputable`` (space-joined, may be ``""``).
    """

    keyword: str
    name: str
    binders: str
    conclusion: str
    modifiers: str = ""

    @property
    def signature(self) -> str:
        """The declaration without ``:=``: ``theorem name binders : conclusion``."""
        head = f"{self.modifiers} {self.keyword}".strip()
        parts = [head, self.name, self.binders]
        return " ".join(p for p in parts if p) + f" :\n  {self.conclusion}"

    @property
    def is_theorem(self) -> bool:
        """True for ``theorem`` / ``lemma`` (Prop-valued), the only kinds that can be negated."""
        return self.keyword in ("theorem", "lemma")


def parse_statement(formal_statement: str) -> Statement:
    """Parse a miniF2F/ProofNet-style statement (``theorem n (x : ℕ) (h : ...) : P x := by``).

    A trailing ``:=``, ``:= by`` or ``:= by sorry`` is accepted and dropped.

    Raises:
        StatementError: no declaration keyword, no name, unbalanced brackets, no top-level
            colon, or text after the declaration (a second command).
    """
    code = drop_proof_marker(strip_comments(formal_statement).strip())
    head = r"((?:(?:{})\s+)*)({})\b\s*".format("|".join(_MODIFIERS), "|".join(DECL_KEYWORDS))
    m = re.match(head, code)
    if not m:
        raise StatementError(f"expected one of {DECL_KEYWORDS} at the start of the statement")
    modifiers, keyword = " ".join(m.group(1).split()), m.group(2)
    rest = code[m.end():]
    name = ""
    if keyword != "example":
        nm = TOKEN_RE.match(rest)
        if not nm:
            raise StatementError(f"no declaration name after {keyword!r}")
        name, rest = nm.group(0), rest[nm.end():]
    masked = mask_comments_and_strings(rest)
    colon = _scan_depth0(masked, 0, ":")
    if colon is None:
        raise StatementError("no top-level ':' separating binders from the conclusion")
    if _scan_depth0(masked, colon + 1, ":=") is not None:
        raise StatementError("unexpected ':=' in the conclusion (a proof or a second command?)")
    binders, conclusion = rest[:colon].strip(), rest[colon + 1:].strip()
    if not conclusion:
        raise StatementError("empty conclusion")
    return Statement(keyword, name, " ".join(binders.split()), conclusion, modifiers)


def split_binders(binders: str) -> list[str]:
    """Split binder text into top-level groups: ``"(x y : ℕ) {f} [inst]"`` -> three groups.

    Raises:
        StatementError: text outside brackets (Lean's bare ``x`` binders are returned as their
            own group only when they are plain identifiers).
    """
    groups: list[str] = []
    i, n = 0, len(binders)
    while i < n:
        c = binders[i]
        if c.isspace():
            i += 1
            continue
        if c in _OPEN:
            depth, j = 0, i
            while j < n:
                if binders[j] in _OPEN:
                    depth += 1
                elif binders[j] in _CLOSE:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise StatementError(f"unclosed binder group at {binders[i:i + 20]!r}")
            groups.append(binders[i:j + 1])
            i = j + 1
        else:
            m = TOKEN_RE.match(binders, i)
            if not m:
                raise StatementError(f"unexpected text in binders at {binders[i:i + 20]!r}")
            groups.append(m.group(0))
            i = m.end()
    return groups


def _forall_binder(group: str) -> str:
    """A declaration binder group as a ``∀`` binder (default values become ``optParam``)."""
    if group[0] not in _OPEN:
        return f"({group} : _)"
    inner, opener, closer = group[1:-1], group[0], group[-1]
    masked = mask_comments_and_strings(inner)
    default = _scan_depth0(masked, 0, ":=")
    if default is None:
        return group
    names_type = inner[:default]
    value = inner[default + 2:].strip()
    colon = _scan_depth0(mask_comments_and_strings(names_type), 0, ":")
    if colon is None:
        names, typ = names_type.strip(), "_"
    else:
        names, typ = names_type[:colon].strip(), names_type[colon + 1:].strip()
    return f"{opener}{names} : optParam ({typ}) ({value}){closer}"


def negate_statement(formal_statement: str, *, suffix: str = "_neg") -> str:
    """The theorem stating that ``formal_statement`` is false, ending in ``:= by``.

    ``theorem X (a : ℕ) (h : P a) : Q a`` becomes ``theorem X_neg : ¬ (∀ (a : ℕ) (h : P a), Q a)``:
    every binder and hypothesis moves under the negation, because the negation of
    ``∀ a, P a → Q a`` is ``¬ ∀ a, P a → Q a`` (not ``∀ a, P a → ¬ Q a``). Instance and implicit
    binders are kept as ``∀`` binders; ``(x := v)`` defaults become ``optParam`` binders.

    Args:
        formal_statement: a ``theorem``/``lemma`` statement (trailing ``:= by`` optional).
        suffix: appended to the name of the new theorem.

    Returns:
        Lean source ``theorem <name><suffix> : ¬ (...) := by``.

    Raises:
        StatementError: the statement cannot be parsed or is not Prop-valued
            (``def``/``instance`` statements have no negation).
    """
    st = parse_statement(formal_statement)
    if not st.is_theorem:
        raise StatementError(f"cannot negate a {st.keyword!r} (not a Prop-valued theorem)")
    binders = [_forall_binder(g) for g in split_binders(st.binders)]
    body = f"∀ {' '.join(binders)}, {st.conclusion}" if binders else st.conclusion
    name = (st.name or "example") + suffix
    return f"theorem {name} :\n  ¬ ({body}) := by\n"


def quote_name(name: str) -> str:
    """``name`` as Lean source: as-is when it is a plain (dotted) identifier, else ``«name»``."""
    return name if _IDENT_RE.match(name) else f"«{name}»"


def unquote_name(name: str) -> str:
    """Remove Lean's ``«»`` quoting from each component of a printed name."""
    return re.sub(r"«([^»]*)»", r"\1", name)
