"""The proof audit: what makes a verified proof verified.

A proof counts only if every check holds; the verdict names the first one that failed.

1. ``forbidden_construct`` (before Lean runs): the submitted text contains no ``sorry`` /
   ``admit``, no ``native_decide`` or compiler-trust constants, no ``axiom`` or other new
   top-level command (``#exit``, ``#print``, ``macro``, ``notation``, ``instance``, ...), no
   ``set_option`` outside a small allow-list (``debug.skipKernelTC`` is out), no attributes
   (``@[implemented_by]``, ``@[extern]``, ...), no metaprogramming (``run_tac``, ``Lean.*``),
   no string literals or ``«»`` names (so the scan and Lean's lexer can never disagree about
   what is a comment), and helper lemmas neither redefine the theorem nor shadow a name the
   statement uses.
2. ``statement_pinning``: the checked file is *built* as ``header + helper lemmas + given
   statement + := + proof body``, so the statement Lean checks is the given one, never the
   model's copy. A restatement that differs from the given text (published proof sets restate
   older miniF2F versions, add parentheses, write ``∑ x in s`` for ``∑ x ∈ s``) is therefore
   not rejected by the text: it is noted (``detail["restatement"]``) and the proof body is
   judged against the given statement. And the pin is a kernel fact: before
   any submitted text, the given statement is elaborated once as ``verimath_ref_stmt`` (proof
   ``sorry``, in its own REPL environment); after the submission we append
   ``theorem verimath_pinned : type_of% @verimath_ref_stmt := @<name>``. Its type is the
   reference's elaborated type, which no helper lemma, notation or ``open`` in the submission
   can reach, and the kernel checks that the proved theorem has exactly that type. This is why
   ``open`` commands and ``open ... in`` / ``set_option ... in`` before the theorem are
   allowed in the helper-lemma part: they cannot change what is proved.
3. ``lean_errors``: Lean reports no error.
4. ``sorry``: no ``declaration uses 'sorry'`` warning and no sorries in the REPL response.
5. ``axioms``: the single ``#print axioms verimath_pinned`` report at the line we appended
   (the pin's axioms are the proof's, transitively) lists only ``propext``,
   ``Classical.choice`` and ``Quot.sound``. That rejects ``sorryAx``, ``Lean.ofReduceBool`` /
   ``Lean.trustCompiler`` / the per-call ``<decl>._native.native_decide.ax_<i>_<j>`` (and
   ``_native.decide.ax``) axioms recent Lean mints for ``native_decide`` / ``decide +native``
   (lean4 PR #12217), and any user axiom. A report
   at another line or for another name is ignored, so a printed fake cannot stand in for it.

The toolchain and Mathlib revision go into every verdict's ``detail["lean"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from verimath.prover.lean_text import (
    DECL_KEYWORDS,
    TOKEN_RE,
    Statement,
    StatementError,
    drop_proof_marker,
    mask_comments_and_strings,
    normalize_statement,
    parse_statement,
    quote_name,
    strip_comments,
    unquote_name,
)
from verimath.prover.responses import SORRY_WARNINGS as SORRY_WARNINGS  # re-exported
from verimath.prover.responses import LeanMessage as LeanMessage  # re-exported
from verimath.prover.responses import LeanResponse
from verimath.prover.types import LeanVersion, ProofTask
from verimath.records import Verdict, VerdictStatus

#: Bump when the audit gets stricter: it is part of the verdict-cache key.
AUDIT_VERSION = "3"  # 2: +native / bv_decide screened; restatements judged by the pin;
# 3: search tactics (apply?, exact?, ...) screened
#: Proof-search tactics that are suggestions, not proofs: never left in a submitted proof.
#: DeepSeek-Prover-V2 (Ren et al. 2025, section 3) reports its 7B model exploiting a Lean 4.9
#: ``apply?`` that closed goals without emitting ``sorry``; ``polyrith`` calls a web service.
SEARCH_TACTICS = frozenset({"apply?", "exact?", "rw?", "rw_search", "library_search", "hint",
                            "polyrith", "suggest"})
ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})
#: Names of the trusted declarations the audit adds; submissions may not mention them.
REF_NAME = "verimath_ref_stmt"
PIN_NAME = "verimath_pinned"
#: The checks in the order they are applied.
CHECKS = ("forbidden_construct", "statement_pinning", "lean_errors", "sorry", "axioms")

#: Any dotted component equal to one of these rejects the text.
FORBIDDEN_IDENTS = frozenset({
    "sorry", "admit", "sorryAx", "native_decide", "ofReduceBool", "ofReduceNat", "reduceBool",
    "reduceNat", "trustCompiler", "implemented_by", "extern", "csimp", "unsafe", "partial",
    "run_tac", "run_elab", "run_meta", "run_cmd", "by_elab", "elab", "elab_rules", "macro",
    "macro_rules", "syntax", "notation", "infix", "infixl", "infixr", "prefix", "postfix",
    "declare_syntax_cat", "skipKernelTC", "addDecl", "addAndCompile", "modifyEnv", "setEnv",
    "evalExpr", "unsafeCast", "unsafeIO", "unsafeBaseIO", "ptrAddrUnsafe", "bv_decide",
    "bv_check", "bv_normalize_native",
})
#: ``detail["restatement"]`` of a submission that restated the theorem differently.
RESTATED_NOTE = "differs from the given statement; the proof was checked against the given one"
#: ``decide +native`` / ``decide (config := {native := true})``: native evaluation by option.
_NATIVE_OPTION = re.compile(r"(?<![\w.])\+native\b|\bnative\s*:=\s*true\b")
#: Top-level commands: none may appear in a proof body; helper lemmas may use theorem/lemma.
COMMAND_KEYWORDS = frozenset({
    "axiom", "theorem", "lemma", "def", "abbrev", "instance", "example", "structure", "class",
    "inductive", "coinductive", "opaque", "namespace", "section", "end", "universe", "variable",
    "export", "attribute", "initialize", "builtin_initialize", "mutual", "noncomputable",
    "private", "protected", "deriving", "import", "omit", "include", "alias", "irreducible_def",
    "add_decl_doc", "compile_inductive", "seal", "unseal", "local", "scoped", "notation3",
    "simproc", "dsimproc", "register_simp_attr", "initialize_simps_projections",
})
PRELUDE_KEYWORDS = frozenset({"theorem", "lemma"})
#: ``set_option`` names (exact, or prefixes ending in ".") a submission may use.
ALLOWED_OPTIONS = ("maxHeartbeats", "maxRecDepth", "synthInstance.", "pp.", "trace.", "linter.")
_HASH_CMD = re.compile(r"(?<![\w.])#(?:[A-Za-z_][\w!?]{3,}|eval|exit|check|print|find|lint|simp|"
                       r"time|help|conv|guard|synth|where)\b")
_SET_OPTION = re.compile(r"\bset_option\s+([\w.]+)")
_OPEN = re.compile(r"(?<![\w.'])open\b")
_OPEN_SCOPED = re.compile(r"(?<![\w.'])open\s+scoped\b")
_OPEN_IN = re.compile(r"(?<![\w.'])open\s+(?:scoped\s+)?(?:[^\W\d][\w.']*\s+)+in\b")
_FENCE = re.compile(r"```[ \t]*(lean4?|Lean4?)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_AXIOMS_RE = re.compile(
    r"^'(?P<name>.+?)' (?:depends on axioms: \[(?P<axioms>[^\]]*)\]|does not depend on any axioms)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One audit failure: which check, and a short human-readable why."""

    check: str
    why: str


@dataclass(frozen=True, slots=True)
class Submission:
    """A candidate proof split into parts (see :func:`split_submission`).

    Attributes:
        prelude: helper lemmas placed between the header and the pinned theorem (comments
            removed; ``""`` when none).
        body: the proof after ``:=`` (``by ...`` or a term), comments removed.
        restated: the submission's own copy of the statement, when it restated it.
        findings: problems found while splitting (missing theorem, redefinition).
        restated_differs: the restatement differs from the given statement beyond whitespace
            and comments (not a finding: the given statement is what Lean checks).
    """

    prelude: str
    body: str
    restated: str | None = None
    findings: tuple[Finding, ...] = ()
    restated_differs: bool = False


@dataclass(frozen=True, slots=True)
class CheckedCommand:
    """The Lean command actually sent (run in the header's environment).

    Attributes:
        code: helper lemmas + pinned statement + ``:=`` + body + the kernel pin +
            ``#print axioms``; run in the environment after ``setup``.
        name: the declaration whose axioms are reported (the pin).
        axioms_line: 1-based line of the appended ``#print axioms`` within ``code``.
        body: the proof body placed after ``:=`` (comments removed).
        setup: the reference statement (``verimath_ref_stmt ... := sorry``), run once per
            process after the header, before any submitted text.
        pin_line: 1-based line of the kernel pin (``verimath_pinned``) within ``code``.
        restated_differs: the submission restated the theorem differently (noted in the
            verdict; the given statement is the one in ``code``).
    """

    code: str
    name: str
    axioms_line: int
    body: str = ""
    setup: str = ""
    pin_line: int = 0
    restated_differs: bool = False


@dataclass(frozen=True)
class AuditReport:
    """Every check's result plus what the verdict records.

    Attributes:
        findings: failed checks in :data:`CHECKS` order (empty = accepted).
        passed: checks that ran and passed.
        axioms: the axioms of the theorem (None when no report was read).
        errors: the first Lean error messages.
        infra: set when Lean could not judge (``"timeout"`` or an error description).
    """

    findings: tuple[Finding, ...] = ()
    passed: tuple[str, ...] = ()
    axioms: tuple[str, ...] | None = None
    errors: tuple[str, ...] = ()
    infra: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_verdict(self, task: ProofTask, lean: LeanVersion, elapsed_s: float = 0.0) -> Verdict:
        """The verdict: CORRECT, WRONG (first failed check), UNVERIFIABLE or ERROR (infra).

        ``infra == "timeout"``: the proof ran Lean out of its time limit; that is the proof's
        own failure (as DeepSeek-Prover, Goedel-Prover and kimina count it), a judged
        ``UNVERIFIABLE``, never could-not-judge. Any other ``infra`` (a crashed or lost REPL,
        "Unknown environment", a server error) is ``ERROR``: could not judge.
        """
        detail: dict[str, Any] = {
            "checks": {c: "pass" for c in self.passed} | {f.check: "fail" for f in self.findings},
            "findings": [{"check": f.check, "why": f.why} for f in self.findings],
            "axioms": list(self.axioms) if self.axioms is not None else None,
            "errors": list(self.errors),
            "lean": lean.to_dict(),
            "audit_version": AUDIT_VERSION,
            "statement_hash": task.statement_hash,
            "proof_hash": task.proof_hash,
            "elapsed_s": round(elapsed_s, 3),
            **self.extra,
        }
        if self.infra == "timeout":
            detail["lean_timeout"] = True
            return Verdict(VerdictStatus.UNVERIFIABLE,
                           "the proof ran Lean out of its time limit (a failed proof)", detail)
        if self.infra is not None:
            return Verdict(VerdictStatus.ERROR, f"lean could not judge: {self.infra}", detail)
        if self.findings:
            first = self.findings[0]
            detail["failed"] = first.check
            return Verdict(VerdictStatus.WRONG, f"rejected by {first.check}: {first.why}", detail)
        return Verdict(VerdictStatus.CORRECT, "accepted: all audit checks passed", detail)


def _components(token: str) -> list[str]:
    return [unquote_name(c) for c in re.findall(r"«[^»]*»|[^.]+", token)]


def screen_text(text: str, *, allowed_commands: frozenset[str] = frozenset(),
                prelude: bool = False) -> list[Finding]:
    """Forbidden constructs in submitted Lean text (a proof body or helper lemmas).

    Args:
        text: submitted Lean source (comments are ignored).
        allowed_commands: command keywords permitted here (``{"theorem", "lemma"}`` for
            helper lemmas; none for a proof body).
        prelude: ``text`` is the helper-lemma part before the theorem, where ``open``
            commands are allowed (the kernel pin makes them harmless); in a proof body or a
            tactic only ``open ... in`` is.

    Returns:
        One ``forbidden_construct`` finding per distinct problem (empty when clean).
    """
    found: list[str] = []
    if '"' in text or "«" in text:
        found.append("string literals and «quoted» names are not allowed in proofs")
    masked = mask_comments_and_strings(text)
    scan = _OPEN_SCOPED.sub("open       ", masked)  # `open scoped X` is an open, not `scoped`
    for tok in dict.fromkeys(TOKEN_RE.findall(scan)):
        comps = _components(tok)
        bad = [c for c in comps if c in FORBIDDEN_IDENTS]
        if bad:
            found.append(f"uses {bad[0]!r}")
        elif tok in SEARCH_TACTICS:
            found.append(f"uses the search tactic {tok!r} (a suggestion, not a proof)")
        elif tok in COMMAND_KEYWORDS and tok not in allowed_commands:
            found.append(f"contains the command {tok!r}")
        elif comps[0] == "Lean" and len(comps) > 1:
            found.append(f"uses the metaprogramming namespace ({tok!r})")
        elif any(c.startswith("verimath_") for c in comps):
            found.append(f"mentions the audit's own declarations ({tok!r})")
    if _NATIVE_OPTION.search(masked):
        found.append("uses native evaluation ('+native')")
    if "@[" in masked:
        found.append("attributes (@[...]) are not allowed")
    for m in _HASH_CMD.finditer(masked):
        found.append(f"contains the command {m.group(0)!r}")
    for m in _SET_OPTION.finditer(masked):
        opt = m.group(1)
        if not any(opt == a or (a.endswith(".") and opt.startswith(a)) for a in ALLOWED_OPTIONS):
            found.append(f"set_option {opt} is not allowed")
    if not prelude and len(_OPEN.findall(masked)) != len(_OPEN_IN.findall(masked)):
        found.append("'open' is only allowed as 'open ... in'")
    return [Finding("forbidden_construct", w) for w in dict.fromkeys(found)]


def _find_decl(masked: str, name: str) -> list[re.Match[str]]:
    pat = rf"(?<![\w.'])(theorem|lemma)\s+(?:_root_\.)?{re.escape(name)}(?![\w.'!?])"
    return list(re.finditer(pat, masked))


def _end_of_signature(masked: str, start: int) -> int | None:
    """Index of the ``:=`` ending the declaration signature that starts at ``start``."""
    depth = 0
    i = start
    while i < len(masked) - 1:
        c = masked[i]
        if c in "([{⦃⟨":
            depth += 1
        elif c in ")]}⦄⟩":
            depth -= 1
        elif depth == 0 and masked.startswith(":=", i):
            return i
        i += 1
    return None


def _extract_code(text: str, name: str) -> str:
    """The Lean code in a model answer.

    A continuation closed by a fence (text, then a closing fence) is the text before the
    fence, unless a later ```lean block holds the theorem; otherwise the last ```lean block
    (preferring one that declares ``name``), else the last fenced block, else the text.
    """
    first = text.find("```")
    if first < 0:
        return text
    tagged = [m.group(2) for m in _FENCE.finditer(text) if m.group(1)]
    with_thm = [b for b in tagged if _find_decl(mask_comments_and_strings(b), name)]
    if with_thm:
        return with_thm[-1]
    if text[:first].strip():
        return text[:first]
    blocks = tagged or [m.group(2) for m in _FENCE.finditer(text)]
    return blocks[-1] if blocks else ""


#: Packages a header's ``import Mathlib`` brings along (Mathlib's own dependencies).
MATHLIB_DEPS = ("Mathlib", "Aesop", "Batteries", "Qq", "ProofWidgets", "Plausible",
                "LeanSearchClient", "ImportGraph")


class HeaderMismatch(ValueError):
    """A full Lean file imports a module the checking header does not provide.

    Judged, not "could not judge": the proof cannot be checked in the task's environment, so it
    is rejected (``forbidden_construct``) like any other command the header does not allow;
    otherwise a model could drop its wrong samples out of pass@k with a made-up import.
    """


def _covered(module: str, header: str) -> bool:
    imported = set(re.findall(r"^\s*import\s+(\S+)", header, re.MULTILINE))
    if module in imported:
        return True
    root = module.split(".")[0]
    return "Mathlib" in imported and root in MATHLIB_DEPS


def _drop_header_lines(code: str, header: str) -> str:
    """Blank the leading lines of ``code`` that repeat the header (a full Lean file's own).

    The leading run of blank lines, lines equal to a line of ``header`` and ``import`` lines
    the header covers (``import Mathlib`` covers ``Mathlib.*``, ``Aesop``, ...) is blanked;
    line numbers are kept. Released proof sets (DeepSeek-Prover-V2, Kimina-Prover,
    Goedel-Prover) ship full files of this shape.

    Raises:
        HeaderMismatch: the file imports a module the header does not provide.
    """
    hdr = {ln.strip() for ln in header.splitlines() if ln.strip()}
    lines = code.split("\n")
    for i, ln in enumerate(lines):
        text = ln.strip()
        if text in hdr or not text:
            lines[i] = ""
        elif m := re.fullmatch(r"import\s+(\S+)", text):
            if not _covered(m.group(1), header):
                raise HeaderMismatch(f"the proof imports {m.group(1)}, which the checking header "
                                     "does not provide (pass a header that does)")
            lines[i] = ""
        else:
            break
    return "\n".join(lines)


def split_submission(statement: Statement, formal_statement: str, proof: str,
                     header: str = "") -> Submission:
    """Split a candidate proof into helper lemmas and the proof body.

    Accepted shapes:

    * a continuation of the statement's ``:= by`` (DeepSeek-Prover completion style): tactics,
      possibly followed by a closing fence;
    * a proof body starting with ``by`` or ``:=``, or a term (for statements ending in ``:=``);
    * a full snippet (optionally fenced) that restates ``theorem <name> ... :=`` after optional
      header lines (dropped when identical to the header's) and helper lemmas.

    Findings: the snippet declares other theorems but not ``<name>``, or declares ``<name>``
    twice (redefinition). A restatement that differs from the given statement only sets
    ``restated_differs``.
    """
    code = strip_comments(_extract_code(proof, statement.name))
    code = _drop_header_lines(code, header)
    masked = mask_comments_and_strings(code)
    decls = _find_decl(masked, statement.name) if statement.name else []
    if len(decls) > 1:
        return Submission("", "", None, (Finding(
            "statement_pinning", f"theorem {statement.name!r} is declared {len(decls)} times"),))
    if not decls:
        other = re.search(r"(?<![\w.'])(theorem|lemma|example)\s+([^\s(:{\[]*)", masked)
        if other:
            return Submission("", "", None, (Finding(
                "statement_pinning",
                f"the submission declares {other.group(0).strip()!r}, not {statement.name!r}"),))
        body = code.strip()
        if body.startswith(":="):
            body = body[2:].strip()
        elif not re.match(r"by\b", body) and formal_statement.rstrip().endswith("by"):
            body = "by\n" + code.strip("\n")
        return Submission("", body)
    decl = decls[0]
    sig_end = _end_of_signature(masked, decl.end())
    if sig_end is None:
        return Submission("", "", None, (Finding(
            "statement_pinning", "the restated theorem has no ':=' (no proof)"),))
    restated = code[decl.start():sig_end]
    differs = normalize_statement(restated) != normalize_statement(formal_statement)
    return Submission(code[:decl.start()].strip("\n"), code[sig_end + 2:].strip(), restated,
                      (), differs)


def _prelude_findings(prelude: str, statement: Statement, formal_statement: str) -> list[Finding]:
    out = screen_text(prelude, allowed_commands=PRELUDE_KEYWORDS, prelude=True)
    masked = mask_comments_and_strings(prelude)
    stmt_names = {c for t in TOKEN_RE.findall(mask_comments_and_strings(formal_statement))
                  for c in (t, t.split(".")[-1])}
    for m in re.finditer(r"(?<![\w.'])(?:theorem|lemma)\s+(\S+)", masked):
        declared = m.group(1).removeprefix("_root_.")
        if declared.split(".")[-1] in stmt_names or declared in stmt_names:
            why = ("redefines the theorem name" if declared.split(".")[-1] == statement.name
                   else f"declares {declared!r}, a name the statement uses")
            out.append(Finding("statement_pinning", why))
    return out


def prepare(task: ProofTask) -> tuple[CheckedCommand | None, list[Finding]]:
    """Text-level audit and the command to run (None when the text is already rejected).

    Raises:
        StatementError: the given statement itself cannot be parsed (a bad task, not a bad
            proof; callers report it as ERROR).
        HeaderMismatch: the submission is a full file importing what the header lacks.
    """
    st = parse_statement(task.formal_statement)
    sub = split_submission(st, task.formal_statement, task.proof, task.header)
    findings = list(sub.findings)
    if sub.findings:
        return None, findings
    if sub.prelude.strip():
        findings += _prelude_findings(sub.prelude, st, task.formal_statement)
    if not sub.body.strip():
        findings.append(Finding("statement_pinning", "empty proof"))
    findings += screen_text(sub.body)
    if findings:
        findings.sort(key=lambda f: CHECKS.index(f.check))
        return None, findings
    pinned = drop_proof_marker(task.formal_statement)
    prefix = (sub.prelude.rstrip() + "\n\n") if sub.prelude.strip() else ""
    body = sub.body.strip()
    kind = "theorem" if st.is_theorem else "noncomputable def"
    code = f"{prefix}{pinned} := {body}\n\n"
    pin_line = code.count("\n") + 1
    code += f"{kind} {PIN_NAME} : type_of% @{REF_NAME} := @{quote_name(st.name)}\n\n"
    axioms_line = code.count("\n") + 1
    code += f"#print axioms {PIN_NAME}\n"
    return CheckedCommand(code, PIN_NAME, axioms_line, body, reference_command(task),
                          pin_line, sub.restated_differs), []


def reference_command(task: ProofTask) -> str:
    """The given statement as ``verimath_ref_stmt`` with proof ``sorry`` (the kernel pin).

    Raises:
        StatementError: the statement cannot be parsed or has no name (``example``).
    """
    st = parse_statement(task.formal_statement)
    if not st.name:
        raise StatementError("an 'example' has no name whose proof could be checked")
    code = drop_proof_marker(strip_comments(task.formal_statement).strip())
    keywords = "|".join(DECL_KEYWORDS)
    head = re.compile(rf"^((?:\w+\s+)*?)({keywords})\s+{re.escape(st.name)}")
    kind = "theorem" if st.is_theorem else "noncomputable def"
    ref, n = head.subn(f"{kind} {REF_NAME}", code, count=1)
    if n != 1:
        raise StatementError(f"could not find the declaration of {st.name!r}")
    return f"{ref} := sorry\n"


def parse_axioms(text: str) -> tuple[str, tuple[str, ...]] | None:
    """``(name, axioms)`` from a ``#print axioms`` message; None if ``text`` is not one.

    Handles both ``'n' depends on axioms: [a, b]`` (possibly wrapped over lines) and
    ``'n' does not depend on any axioms``.
    """
    m = _AXIOMS_RE.match(text.strip())
    if not m:
        return None
    raw = m.group("axioms")
    axioms = tuple(a.strip() for a in (raw or "").replace("\n", " ").split(",") if a.strip())
    return unquote_name(m.group("name")), tuple(unquote_name(a) for a in axioms)


def audit_response(cmd: CheckedCommand, response: LeanResponse) -> AuditReport:
    """Checks 3-5 on Lean's answer to ``cmd`` (errors, sorry, axioms)."""
    findings: list[Finding] = []
    passed = ["forbidden_construct"]
    errors = tuple(response.errors[:5])
    at_pin = [m.text for m in response.messages
              if m.severity == "error" and cmd.pin_line and m.line == cmd.pin_line]
    if at_pin:  # the theorem compiled but its type is not the reference statement's
        findings.append(Finding("statement_pinning", "the kernel pin failed: the proved "
                                f"statement differs from the given one ({at_pin[0][:150]})"))
    elif errors:
        findings.append(Finding("lean_errors", errors[0].splitlines()[0][:200]))
    if not errors:
        passed.append("lean_errors")
    if response.uses_sorry:
        findings.append(Finding("sorry", "the proof uses sorry"))
    else:
        passed.append("sorry")
    reports = [
        (m, parsed) for m in response.messages
        if m.severity == "info" and (parsed := parse_axioms(m.text)) is not None
        and m.line == cmd.axioms_line
    ]
    axioms: tuple[str, ...] | None = None
    infra: str | None = None
    if errors:
        pass  # the theorem did not elaborate; its axiom report is meaningless
    elif len(reports) != 1 or reports[0][1][0] != unquote_name(cmd.name):
        names = [r[1][0] for r in reports]
        infra = (f"expected one '#print axioms' report for {cmd.name!r} at line "
                 f"{cmd.axioms_line}, got {names or 'none'}")
    else:
        axioms = reports[0][1][1]
        bad = [a for a in axioms if a not in ALLOWED_AXIOMS]
        if bad:
            native = [a for a in bad if _is_native_axiom(a)]
            why = f"depends on {', '.join(bad)}"
            if native:
                why += " (native evaluation: the proof trusts the compiler, not the kernel)"
            findings.append(Finding("axioms", why))
        else:
            passed.append("axioms")
    if not at_pin:
        passed.insert(1, "statement_pinning")
    findings.sort(key=lambda f: CHECKS.index(f.check))
    if findings:
        infra = None  # a judged rejection beats a missing report
    extra = {"restatement": RESTATED_NOTE} if cmd.restated_differs else {}
    return AuditReport(tuple(findings), tuple(passed), axioms, errors, infra, extra)


def _is_native_axiom(name: str) -> bool:
    """``Lean.ofReduceBool`` / ``Lean.trustCompiler`` / ``<decl>._native.<tactic>.ax_<n>``."""
    return name in ("Lean.ofReduceBool", "Lean.ofReduceNat", "Lean.trustCompiler") or \
        "._native." in name or name.startswith("_native.")


def audit_text_only(task: ProofTask) -> AuditReport | CheckedCommand:
    """The text-level audit: a rejecting report, or the command Lean must run next."""
    try:
        cmd, findings = prepare(task)
    except StatementError as e:
        return AuditReport(infra=f"bad statement: {e}")
    except HeaderMismatch as e:  # the proof needs a module the checking environment lacks
        return AuditReport((Finding("forbidden_construct", str(e)),))
    if cmd is None:
        return AuditReport(tuple(findings))
    return cmd


def screen_tactic(tactic: str) -> list[Finding]:
    """:func:`screen_text` for one tactic proposed in search (no commands allowed)."""
    return screen_text(tactic)


def statement_findings(formal_statement: str) -> list[str]:
    """Why a statement cannot be compile-checked as one declaration ([] when fine)."""
    try:
        parse_statement(formal_statement)
    except StatementError as e:
        return [str(e)]
    toks = TOKEN_RE.findall(mask_comments_and_strings(drop_proof_marker(formal_statement)))
    bad = [t for t in toks if t in COMMAND_KEYWORDS - {"theorem", "lemma", "def", "noncomputable",
                                                        "abbrev", "instance", "example"}]
    bad += [t for t in toks if set(_components(t)) & FORBIDDEN_IDENTS]
    return [f"the statement contains {b!r}" for b in dict.fromkeys(bad)]
