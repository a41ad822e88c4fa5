"""The one tool-integrated-reasoning (TIR) engine: a state machine over text and raw tool output.

TIR in the ToRA format (Gou et al. 2023, "ToRA: A Tool-Integrated Reasoning Agent"): text and
```python blocks interleave; generation stops where a block closes, the block runs in the
attempt's own sandbox *session* (state persists between blocks), its output is appended as an
```output block, and generation resumes, at most ``max_tool_calls`` times.

:class:`TirEngine` is the pure part, shared by every caller: generated text goes in
(:meth:`TirEngine.feed`), "run this code" (:class:`RunCode`) or "done" (:class:`Done`) comes
out; the raw :class:`~verimath.reasoning.sandbox.ExecResult` goes back in
(:meth:`TirEngine.observe`) and the ```output block to append comes out. It never generates and
never runs code. Two adapters drive it:

* text: :func:`verimath.reasoning.rollout.rollout` (eval, datagen) over any
  :class:`verimath.backends.Backend`;
* tokens / loss mask: :class:`verimath.rl.tools.TirRollout`, a TRL ``rollout_func`` (``env_mask`` 0
  on tool tokens).

:func:`drive` is the shared scheduler: sessions are opened lazily at an attempt's first code
block, at most ``max_sessions`` at once (:class:`SessionSlots`), and closed as soon as the
attempt ends; an attempt that needs a session while all are taken waits (it is not generated
for) until one is closed.

"Could not judge" (DESIGN.md): a ``SANDBOX_ERROR`` result, a session that could not be opened
or run, and a cell that ran in a fresh interpreter because the previous one was lost between
cells all end the attempt with ``finish_reason="error"`` (never scored, never rewarded). A
restart that the attempt's own previous cell caused (its timeout, memory kill, crash,
``os._exit``) is the program's doing, not an infrastructure failure.

The fallback answer (no boxed/stated answer in the model's text) is the last line of the raw
stdout of the last successful cell (:attr:`verimath.records.ToolCall.stdout`), never the text
shown to the model, so a display placeholder such as :data:`NO_OUTPUT` cannot become an answer.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from verimath.reasoning.extract import extract_answer, extract_program_output
from verimath.records import Attempt, Span, SpanKind, ToolCall

if TYPE_CHECKING:
    from verimath.reasoning.sandbox import ExecResult

log = logging.getLogger(__name__)

#: Stop strings of a TIR turn: a python block closes, or the model opens an output block itself.
TIR_STOP = ("```output", "\n```\n")
_OUTPUT_STOP, _FENCE_STOP = TIR_STOP
_CODE_RE = re.compile(r"```(?:python|py)[ \t]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
#: Shown to the model for a cell that printed nothing (display only; never an answer).
NO_OUTPUT = "(no output; use print() to see values)"


def extract_code(text: str) -> str | None:
    """The last ```python block of ``text`` (closed or running to the end); None if none."""
    blocks = _CODE_RE.findall(text)
    return blocks[-1] if blocks else None


def tool_feedback(result: ExecResult, max_chars: int) -> str:
    """What the model sees after running a block: stdout, or the error's last lines.

    Long output keeps its head and tail with a ``...`` marker so the final value stays visible.
    Display only: answers are read from the raw ``result.stdout``.
    """
    status = str(result.status)
    if status == "ok":
        out = result.stdout.strip() or NO_OUTPUT
    elif status == "timeout":
        out = "TimeoutError: the code ran past its time limit"
    elif status == "memory":
        out = "MemoryError: the code ran past its memory limit"
    else:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        out = "\n".join([result.stdout.strip(), *lines[-3:]]).strip() or status
    if len(out) > max_chars:
        half = max_chars // 2 - 3
        out = out[:half] + "\n...\n" + out[-half:]
    return out


@dataclass(frozen=True, slots=True)
class Cut:
    r"""Where a TIR turn ends inside generated text.

    Attributes:
        keep: characters of the text that are the model's turn (the rest is dropped).
        code: the python block to run.
        closed: True when ``keep`` ends just after a closing fence ``\n```\n`` (a token adapter
            keeps the fewest tokens reaching ``keep``); False when the model began its own
            ```output block at ``keep`` (dropped: the sandbox writes outputs; a token adapter
            keeps the most tokens staying within ``keep``).
    """

    keep: int
    code: str
    closed: bool


def find_cut(text: str) -> Cut | None:
    r"""The first place in ``text`` where a python block ends (see :data:`TIR_STOP`).

    Args:
        text: generated text as the model wrote it, including any stop string the generator
            matched (backends that strip it must add it back), possibly running past the block.

    Returns:
        The :class:`Cut`; None when no python block ends in ``text``.
    """
    hits = []
    if (i := text.find(_FENCE_STOP)) != -1:
        hits.append((i + len(_FENCE_STOP), True))
    if (i := text.find(_OUTPUT_STOP)) != -1:
        hits.append((i, False))
    for keep, closed in sorted(hits):
        code = extract_code(text[:keep])
        if code is not None:
            return Cut(keep, code, closed)
    return None


def interpreter_lost(result: ExecResult, previous: ExecResult | None = None) -> bool:
    """True when ``result`` ran in a fresh interpreter for a reason outside the program.

    Relies only on the sandbox's structured ``result.restarted`` flag, which the sandbox sets
    only for losses outside the program (never on stderr text or the previous cell's status:
    a program can print any text, and a truncated-output or caught-MemoryError cell leaves its
    interpreter alive).

    Args:
        result: the cell's result.
        previous: the previous cell's result in the same session (unused; kept for callers).
    """
    return bool(result.restarted)


@dataclass(frozen=True, slots=True)
class RunCode:
    """Engine action: run ``code`` in the attempt's session, then call ``observe``."""

    code: str


@dataclass(frozen=True, slots=True)
class Done:
    """Engine action: the attempt is over (``finish_reason`` as in :class:`Attempt`)."""

    finish_reason: str


Action = RunCode | Done


@dataclass
class TirEngine:
    """One TIR attempt as a state machine (no I/O; adapters generate and run code).

    States: *generate* (``pending is None``, not done) -> :meth:`feed` -> *run*
    (``pending`` holds code) -> :meth:`observe` -> *generate* ... -> *done*
    (``finish_reason`` set). After ``max_tool_calls`` runs the model gets one more turn in
    which code is not run (finish ``"tool_limit"`` if it writes code then).

    Args:
        max_tool_calls: most python blocks run (>= 1).
        max_tool_output_chars: tool output shown to the model is cut to this many characters.

    Attributes:
        spans: model and tool spans so far (``"".join`` is the attempt text).
        calls: the runs so far, with raw stdout.
        pending: code to run next; None when not waiting for a run.
        finish_reason: None while running; "stop", "length", "tool_limit" or "error".
        tokens: model tokens generated (added by the adapter through :meth:`feed`).
    """

    max_tool_calls: int = 4
    max_tool_output_chars: int = 800
    spans: list[Span] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    pending: str | None = None
    finish_reason: str | None = None
    tokens: int = 0
    _last: Any = None  # the previous raw ExecResult

    @property
    def done(self) -> bool:
        """True once the attempt is over."""
        return self.finish_reason is not None

    @property
    def tools_left(self) -> bool:
        """True while a block written in the next turn would still run."""
        return len(self.calls) < self.max_tool_calls

    @property
    def text(self) -> str:
        """Model text and tool output so far, in order."""
        return "".join(s.text for s in self.spans)

    @property
    def model_text(self) -> str:
        """Only what the model wrote."""
        return "".join(s.text for s in self.spans if s.kind is SpanKind.MODEL)

    def stops(self, base: Sequence[str] = ()) -> tuple[str, ...]:
        """Stop strings for the next turn: ``base`` plus :data:`TIR_STOP` while tools are left."""
        return tuple(dict.fromkeys((*base, *TIR_STOP))) if self.tools_left else tuple(base)

    def feed(self, text: str, finish_reason: str = "stop", *, tokens: int = 0,
             final: bool = False) -> tuple[Cut | None, Action]:
        """Take one generated turn.

        Args:
            text: the turn as generated (stop string included, see :func:`find_cut`).
            finish_reason: the generator's reason ("stop" / "length"), used when the turn ends
                the attempt.
            tokens: model tokens of the turn (for ``Attempt.completion_tokens``).
            final: the adapter cannot continue (token budget spent): record ``text`` whole and
                end with ``finish_reason``, running nothing.

        Returns:
            ``(cut, action)``: where the kept model text ends (None: all of ``text`` was kept)
            and what to do next.

        Raises:
            RuntimeError: called while done or while code is pending (an adapter bug).
        """
        if self.done or self.pending is not None:
            raise RuntimeError("TirEngine.feed: the attempt is not waiting for model text")
        self.tokens += tokens
        cut = find_cut(text) if self.tools_left and not final else None
        if cut is None:
            self.spans.append(Span(SpanKind.MODEL, text))
            if final or self.tools_left or extract_code(text) is None:
                self.finish_reason = finish_reason
            else:
                self.finish_reason = "tool_limit"
            return None, Done(self.finish_reason)
        self.spans.append(Span(SpanKind.MODEL, text[:cut.keep]))
        self.pending = cut.code
        return cut, RunCode(cut.code)

    def observe(self, result: ExecResult) -> str | None:
        """Take the raw result of the pending code.

        Returns:
            The ```output block to append to the model's context (tool tokens), or None when
            the attempt ended with an infrastructure failure (``finish_reason="error"``).
        """
        if self.pending is None:
            raise RuntimeError("TirEngine.observe: no code is pending")
        code, self.pending = self.pending, None
        infra = str(result.status) == "sandbox_error" or interpreter_lost(result, self._last)
        self._last = result
        shown = tool_feedback(result, self.max_tool_output_chars)
        status = "sandbox_error" if infra else str(result.status)
        self.calls.append(ToolCall(code=code, status=status, output=shown,
                                   wall_time_s=result.wall_time_s, stdout=result.stdout))
        lead = "" if self.text.endswith("\n") else "\n"
        block = f"{lead}```output\n{shown}\n```\n"
        self.spans.append(Span(SpanKind.TOOL, block))
        if infra:
            self.finish_reason = "error"
            return None
        return block

    def abort(self, finish_reason: str) -> None:
        """End the attempt now (e.g. the token budget ran out); pending code is dropped."""
        self.pending = None
        if not self.done:
            self.finish_reason = finish_reason

    def answer(self) -> str | None:
        """The final answer: the model's own, else from the last successful cell's raw stdout.

        The fallback (ToRA's program output) is the last non-empty line of
        ``ToolCall.stdout``; None when neither exists.
        """
        answer = extract_answer(self.model_text)
        if answer is None and self.calls and self.calls[-1].status == "ok":
            answer = extract_program_output(self.calls[-1].stdout or "")
        return answer

    def attempt(self) -> Attempt:
        """The finished attempt (``finish_reason`` "stop" if the engine never finished)."""
        return Attempt(text=self.text, spans=tuple(self.spans), tool_calls=tuple(self.calls),
                       answer=self.answer(), finish_reason=self.finish_reason or "stop",
                       completion_tokens=self.tokens)


class SessionSlots:
    """Sandbox sessions opened lazily, at most ``limit`` at once.

    Each session is an interpreter process with its own uid, so their number is bounded here
    rather than by the number of attempts.

    Args:
        sandbox: anything with ``session()`` (a :class:`verimath.reasoning.sandbox.Sandbox`).
        limit: most sessions open at once (>= 1).

    Attributes:
        peak: most sessions that were open at once.
        opened: sessions opened in total.
    """

    def __init__(self, sandbox: Any, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_sessions must be >= 1, got {limit!r}")
        self._sandbox, self.limit = sandbox, limit
        self._lock = threading.Lock()
        self.open_now = self.peak = self.opened = 0

    def try_open(self) -> Any | None:
        """A new session, or None when ``limit`` are open.

        Raises:
            SandboxError: the sandbox could not start one (the slot is released).
        """
        with self._lock:
            if self.open_now >= self.limit:
                return None
            self.open_now += 1
            self.peak = max(self.peak, self.open_now)
            self.opened += 1
        try:
            return self._sandbox.session()
        except BaseException:
            with self._lock:
                self.open_now -= 1
            raise

    def close(self, session: Any) -> None:
        """Close ``session`` and free its slot."""
        try:
            session.close()
        finally:
            with self._lock:
                self.open_now -= 1


def _run_cell(session: Any, code: str) -> ExecResult:
    """Run one cell; a sandbox that raises is an infrastructure failure (a value)."""
    from verimath.reasoning.sandbox import ExecResult, ExecStatus, SandboxError

    try:
        return session.run(code)
    except SandboxError as e:
        return ExecResult(ExecStatus.SANDBOX_ERROR, "", f"[sandbox] {e}\n", None, 0.0, 0.0,
                          "unknown")


def _open_failed(err: Exception) -> ExecResult:
    from verimath.reasoning.sandbox import ExecResult, ExecStatus

    return ExecResult(ExecStatus.SANDBOX_ERROR, "", f"[sandbox] {err}\n", None, 0.0, 0.0,
                      "unknown")


def drive(engines: Sequence[TirEngine], generate: Callable[[list[int]], None], sandbox: Any,
          *, max_sessions: int = 64, workers: int = 4) -> SessionSlots:
    """Run TIR attempts to the end: generation rounds, then concurrent cell runs.

    Each round, attempts with pending code get a session (opened lazily; at most
    ``max_sessions`` open at once) and their cells run ``workers`` at a time; then every
    attempt waiting for model text is generated for, in one ``generate(indices)`` call, which
    must call ``engines[i].feed`` (or ``abort``) for each index. An attempt whose code waits
    for a free session is not generated for until it got one. A session is closed as soon as
    its attempt is done.

    Args:
        engines: fresh engines, one per attempt.
        generate: the adapter's generation step (see above).
        sandbox: anything with ``session()``.
        max_sessions: most sessions open at once.
        workers: concurrent cell runs.

    Returns:
        The :class:`SessionSlots` used (``peak``, ``opened``), all of its sessions closed.

    Raises:
        RuntimeError: ``generate`` left an attempt unfed (an adapter bug).
    """
    from verimath.reasoning.sandbox import SandboxError

    slots = SessionSlots(sandbox, max_sessions)
    sessions: dict[int, Any] = {}

    def release(i: int) -> None:
        if i in sessions:
            slots.close(sessions.pop(i))

    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            while not all(e.done for e in engines):
                ready = []
                for i, e in enumerate(engines):
                    if e.pending is None:
                        continue
                    if i not in sessions:
                        try:
                            s = slots.try_open()
                        except SandboxError as err:
                            e.observe(_open_failed(err))
                            continue
                        if s is None:
                            continue  # all slots taken: wait for an attempt to end
                        sessions[i] = s
                    ready.append(i)
                codes = [(sessions[i], engines[i].pending) for i in ready]
                for i, res in zip(ready, pool.map(lambda sc: _run_cell(*sc), codes), strict=True):
                    engines[i].observe(res)
                    if engines[i].done:
                        release(i)
                todo = [i for i, e in enumerate(engines) if not e.done and e.pending is None]
                if todo:
                    generate(todo)
                    for i in todo:
                        if engines[i].pending is None and not engines[i].done:
                            raise RuntimeError(f"generate() did not feed attempt {i}")
                        if engines[i].done:
                            release(i)
                elif not ready and not all(e.done for e in engines):
                    raise RuntimeError("TIR scheduler: no attempt could run (a bug)")
    finally:
        for i in list(sessions):
            release(i)
    return slots
