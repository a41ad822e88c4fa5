r"""Answer grading: extraction, then math-verify equivalence in worker processes with real timeouts.

:class:`Grader` owns ``workers`` long-lived worker processes
(:mod:`verimath.reasoning._grade_worker`), each running math-verify (sympy + latex2sympy2_extended)
behind a JSON-lines pipe. A comparison that does not answer within ``timeout_s`` seconds of
wall-clock time is a ``TIMEOUT`` verdict: the worker's process group is SIGKILLed and a fresh worker
is started in its place (never ``signal.alarm``, never waiting on the hung call). A worker that dies
mid-item gives that item an ``ERROR`` verdict and is replaced the same way.

Statuses (:class:`verimath.records.VerdictStatus`):

* ``CORRECT`` / ``WRONG``: math-verify's decision (or identical normalised strings, a fast path
  that never reaches sympy);
* ``NO_ANSWER``: the prediction is None, empty, or no answer could be extracted from it
  (an empty ``\boxed{}`` included); judged, and counts as not correct;
* ``BAD_GOLD``: the gold is None, empty, has unbalanced braces, or math-verify cannot parse it;
* ``UNVERIFIABLE``: the answer itself runs the grader out of its limits (see below); judged,
  counts as not correct everywhere (reward 0.0);
* ``TIMEOUT``: no verdict within ``timeout_s``, and the re-check could not decide either;
* ``ERROR``: the worker crashed or was killed (twice), or failed for a reason of its own.

Caused by the input or by the infrastructure (issue 18). A comparison that times out, runs the
worker out of memory, crashes math-verify's parser (recursion) or makes every comparison raise
is re-checked once, on a fresh worker with the same limits, where the time limit is measured in
the worker's **CPU time** (its wall-clock is capped at ``retry_wall_factor * timeout_s``), so a
loaded machine is not mistaken for a heavy answer. If the failure reproduces, the gold answer
alone goes through the same check (against itself, and against a plain ``0``): when the gold
evaluates, the answer caused the failure and the verdict is ``UNVERIFIABLE``; when the gold
fails too, ``BAD_GOLD``.
What does not reproduce (a worker killed from outside, a machine too loaded to give the re-check
its CPU time, a worker that dies again) stays ``TIMEOUT`` / ``ERROR``: could not judge.

``BAD_GOLD``, ``TIMEOUT`` and ``ERROR`` are never ``CORRECT``; callers map them to "skipped".
Every verdict's ``detail`` has ``gold`` and ``pred`` (the extracted strings, or None),
``grader`` (:data:`GRADER_VERSION`) and ``elapsed_s``; verdicts that reached math-verify add
``math_verify`` (its version) and ``gold_parsed`` / ``pred_parsed`` (sympy, shortened).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import verimath
from verimath.reasoning.extract import (
    boxes_only,
    clean_answer,
    extract_answer,
    extract_box_run,
    extract_gold,
    find_choice,
    mc_choice,
    normalize_answer,
    offers_alternatives,
)
from verimath.records import Attempt, Verdict, VerdictStatus

__all__ = ["GRADER_VERSION", "Grader", "GraderClosed", "GraderConfig", "GraderUnavailable",
           "grade_attempts"]

logger = logging.getLogger(__name__)

#: Bumped whenever extraction or equivalence semantics change; recorded in every verdict.
#: 2: one gold extractor (verimath.gold); 3: structure-keeping answer extraction.
GRADER_VERSION = "verimath-grader/3"


class GraderUnavailable(RuntimeError):
    """A worker process could not be started (math-verify missing, interpreter broken).

    An infrastructure failure: rewards map it to None and jobs count it as could-not-judge.
    """


class GraderClosed(RuntimeError):
    """:meth:`Grader.grade` was called after :meth:`Grader.close`.

    A caller bug (or a shutdown racing a job), not an infrastructure failure: it is not a
    :class:`GraderUnavailable`, so it raises through rewards and jobs instead of becoming
    "could not judge".
    """


@dataclass(frozen=True)
class GraderConfig:
    r"""Settings of a :class:`Grader`.

    Attributes:
        timeout_s: wall-clock seconds one comparison (both parses and the verify) may take;
            past it the verdict is TIMEOUT and the worker is killed and replaced.
        workers: worker processes, i.e. comparisons run in parallel.
        memory_mb: address-space limit of each worker (RLIMIT_AS); None for no limit.
        start_timeout_s: seconds a new worker may take to import math-verify and report ready.
        float_rounding: math-verify ``float_rounding``: decimal places floats are rounded to
            before comparing (``2`` makes ``(0.6,2.6667]`` equal ``(\frac{3}{5},\frac{8}{3}]``).
        numeric_precision: math-verify ``numeric_precision`` (significant digits of the
            numeric comparison).
        strict: math-verify ``strict``: variables matter and sets are not tuples; False
            matches variables by position and lets a set equal a tuple.
        allow_set_relation_comp: math-verify ``allow_set_relation_comp``: True lets a gold
            relation equal a set in either direction (``1 < x < 2`` vs ``(1, 2)``); False (the
            math-verify default) allows it only when the prediction is the set.
        raw_extraction: also run math-verify's own extraction on the raw texts (whole
            solutions) in the worker, ahead of ours; False grades only our extracted strings.
        batch_size: pairs :meth:`Grader.grade_many` sends to a worker per round trip (each
            still has its own ``timeout_s``).
        string_fast_path: call two answers with the same
            :func:`~verimath.reasoning.extract.normalize_answer` key CORRECT without math-verify.
        retry_wall_factor: wall-clock cap of the CPU-timed re-check of a failed comparison, as
            a multiple of ``timeout_s`` (see the module docstring); past it the machine was too
            loaded to decide and the verdict stays TIMEOUT.
    """

    timeout_s: float = 5.0
    workers: int = 2
    memory_mb: int | None = 4096
    start_timeout_s: float = 60.0
    float_rounding: int = 6
    numeric_precision: int = 15
    strict: bool = True
    allow_set_relation_comp: bool = False
    raw_extraction: bool = True
    batch_size: int = 8
    string_fast_path: bool = True
    retry_wall_factor: float = 10.0

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {self.workers!r}")
        if self.memory_mb is not None and self.memory_mb < 256:
            raise ValueError(f"memory_mb must be >= 256 or None (no limit), got {self.memory_mb}")
        if not self.start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be > 0 seconds, got {self.start_timeout_s}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.float_rounding < 0 or self.numeric_precision < 1:
            raise ValueError("float_rounding must be >= 0 and numeric_precision >= 1")
        if not self.retry_wall_factor >= 1:
            raise ValueError(f"retry_wall_factor must be >= 1 (a multiple of timeout_s), got "
                             f"{self.retry_wall_factor}")

    def call_budget_s(self) -> float:
        """Upper bound (s) of one comparison's wall time, re-checks and worker starts included.

        A caller's own deadline for one :meth:`Grader.grade` call (e.g. a reward's safety net)
        should not be shorter: below it, the caller and not the grader would decide the item.
        """
        check = self.timeout_s * self.retry_wall_factor + self.start_timeout_s
        return self.timeout_s + self.start_timeout_s + 2 * check


class _WorkerDied(Exception):
    """The worker's pipe closed (crash, OOM kill, external kill)."""


class _Timeout(Exception):
    """No reply within the time limit (wall-clock, or the worker's CPU time in a re-check)."""


class _Overloaded(Exception):
    """A re-check's wall-clock cap passed before the worker could use its CPU time limit."""


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class _Worker:
    """One ``verimath.reasoning._grade_worker`` process, talked to over raw pipes.

    The calling thread reads replies itself with ``poll`` and a deadline (no reader thread,
    no extra thread hop per item). Only the thread that acquired the worker uses it.
    """

    def __init__(self, config: GraderConfig) -> None:
        cfg = {
            "memory_mb": config.memory_mb,
            "float_rounding": config.float_rounding,
            "numeric_precision": config.numeric_precision,
            "strict": config.strict,
            "allow_set_relation_comp": config.allow_set_relation_comp,
        }
        env = dict(os.environ)
        # the folder holding the `verimath` package this process runs (site-packages, or the
        # checkout), first on the worker's path; -P keeps the working directory off it, so a
        # caller's own folders can never shadow ours (issue 19)
        root = str(Path(verimath.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "verimath.reasoning._grade_worker", json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,  # own process group: kill() takes any children with it
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._out_fd = self.proc.stdout.fileno()
        self._in_fd = self.proc.stdin.fileno()
        self._poll = select.poll()
        self._poll.register(self._out_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        self._buf = bytearray()
        self._eof = False
        self.info: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (also its process group id)."""
        return self.proc.pid

    def _get(self, timeout_s: float) -> dict[str, Any]:
        """The next reply line as a dict; _Timeout after ``timeout_s``, _WorkerDied on EOF."""
        deadline = time.monotonic() + timeout_s
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return dict(json.loads(line))
            if self._eof:
                raise _WorkerDied(f"worker exited (code {self.proc.poll()})")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout
            if not self._poll.poll(max(1, int(remaining * 1000) + 1)):
                continue
            try:
                data = os.read(self._out_fd, 1 << 16)
            except OSError:
                data = b""
            if data:
                self._buf += data
            else:
                self._eof = True

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        """Block until the worker has imported math-verify; returns its hello message.

        Raises:
            GraderUnavailable: not ready within ``timeout_s``.
            _WorkerDied: it exited first.
        """
        if self.info is None:
            try:
                info = self._get(timeout_s)
            except _Timeout as e:
                raise GraderUnavailable(f"grader worker not ready after {timeout_s:g} s") from e
            if not info.get("ready"):
                raise GraderUnavailable(str(info.get("error", "grader worker refused to start")))
            self.info = info
        return self.info

    def send(self, items: list[tuple[str, str, str | None, str | None]]) -> None:
        """Write one request (a batch of pairs); raises _WorkerDied when the pipe is closed."""
        data = memoryview((json.dumps({"items": items}) + "\n").encode("ascii"))
        try:
            while data:
                data = data[os.write(self._in_fd, data) :]
        except OSError as e:  # BrokenPipeError: the worker is gone
            raise _WorkerDied(f"worker pipe closed ({type(e).__name__})") from e

    def receive(self, timeout_s: float) -> dict[str, Any]:
        """The next reply (one per item); _Timeout on timeout, _WorkerDied on exit."""
        return self._get(timeout_s)

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the worker has used; None where /proc cannot tell."""
        try:
            with open(f"/proc/{self.proc.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def receive_cpu(self, cpu_limit_s: float, wall_limit_s: float) -> dict[str, Any]:
        """The next reply, timed by the worker's CPU time.

        Raises:
            _Timeout: the worker used ``cpu_limit_s`` of CPU time without replying (without
                /proc: ``cpu_limit_s`` of wall-clock time).
            _Overloaded: ``wall_limit_s`` passed first.
            _WorkerDied: the worker exited.
        """
        t0 = time.monotonic()
        base = self.cpu_s()
        while True:
            left = t0 + wall_limit_s - time.monotonic()
            if left <= 0:
                raise _Overloaded
            try:
                return self._get(min(0.1, left))
            except _Timeout:
                pass
            now = self.cpu_s()
            used = now - base if now is not None and base is not None else None
            if (used if used is not None else time.monotonic() - t0) >= cpu_limit_s:
                raise _Timeout

    def kill(self) -> None:
        """SIGKILL the worker's process group and reap it. Idempotent."""
        _kill_proc(self.proc)


def _kill_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                proc.kill()
            except ProcessLookupError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        logger.warning("grader worker %d did not exit after SIGKILL", proc.pid)
    for f in (proc.stdin, proc.stdout):
        try:
            if f is not None:
                f.close()
        except OSError:
            pass


def _kill_all(procs: set[subprocess.Popen[bytes]]) -> None:
    for p in list(procs):
        _kill_proc(p)
    procs.clear()


def _gold_answer(gold: str) -> str | None:
    r"""The gold answer of a gold text: all its joined boxes, else :func:`extract_gold` "auto".

    ``\boxed{1}\boxed{2}`` -> ``1, 2`` (one answer, as :func:`extract_answer` reads a
    prediction); a GSM8K ``#### N`` solution and box-free texts go to ``extract_gold``.
    """
    if "####" not in gold:
        run = extract_box_run(gold)
        if len(run) > 1:
            return ", ".join(run)
    ans = extract_gold(gold, "auto")
    if ans is None:  # "$19, 46, and 82$": one math group that is not a "bare" line
        inner = clean_answer(gold)
        if inner != gold.strip() and "\n" not in inner and len(inner) <= 300:
            return inner or None
    return ans


def _has_math(text: str) -> bool:
    """Whether a text has LaTeX math delimiters or a box math-verify can extract from."""
    return "$" in text or "\\(" in text or "\\[" in text or "\\boxed" in text


def _gold_problem(gold: str) -> str | None:
    """Why a gold answer is unusable before any parsing, or None when it looks fine."""
    depth = 0
    i = 0
    while i < len(gold):
        c = gold[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return "gold answer has unbalanced braces"
        i += 1
    if depth:
        return "gold answer has unbalanced braces"
    if not any(ch.isalnum() for ch in gold):
        return "gold answer has no mathematical content"
    return None


@dataclass
class _Item:
    """One pair on its way through the grader."""

    gold: str | None  # extracted gold answer
    pred: str | None  # extracted prediction
    detail: dict[str, Any]
    verdict: Verdict | None = None  # set when decided
    gold_raw: str | None = None  # whole gold solution for math-verify's own extraction
    pred_raw: str | None = None  # whole completion for math-verify's own extraction
    recheck: bool = False  # the first try timed out, lost its worker or hit an input limit

    def payload(self) -> tuple[str, str, str | None, str | None]:
        return (str(self.gold), str(self.pred), self.gold_raw, self.pred_raw)

    def finish(self, status: VerdictStatus, reason: str, elapsed_s: float, **extra: Any) -> None:
        self.detail.update(extra)
        self.detail["elapsed_s"] = round(elapsed_s, 4)
        self.verdict = Verdict(status, reason, self.detail)


class Grader:
    r"""Grades predictions against gold answers with math-verify in killable worker processes.

    Thread-safe: any number of threads may call :meth:`grade` / :meth:`grade_many`; at most
    ``config.workers`` comparisons run at once. Use as a context manager, or call
    :meth:`close` (kills workers).

    :meth:`grade_many` sends pairs to the workers in batches of up to ``config.batch_size``
    (one pipe round trip per batch); each item still has its own ``timeout_s``, timed from the
    worker's previous reply. After a timeout or crash the rest of the batch is re-sent to the
    replacement worker.

    Example:
        >>> with Grader(GraderConfig(timeout_s=5, workers=2)) as g:  # doctest: +SKIP
        ...     g.grade("\\frac{1}{2}", "The answer is 0.5").status
        <VerdictStatus.CORRECT: 'correct'>
    """

    def __init__(self, config: GraderConfig | None = None) -> None:
        self.config = config or GraderConfig()
        self._lock = threading.Lock()
        self._closed = False
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._idle: queue.Queue[_Worker | None] = queue.Queue()  # None: slot to respawn
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)
        self.restarts = 0  #: workers replaced after a timeout or crash
        self.rechecks = 0  #: failed comparisons re-checked on a fresh worker
        self._gold_checked: dict[tuple[str | None, str | None], bool] = {}  # gold -> evaluates
        for _ in range(self.config.workers):
            self._idle.put(self._spawn())

    # -- lifecycle -------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        try:
            w = _Worker(self.config)
        except OSError as e:
            raise GraderUnavailable(f"cannot start grader worker: {e}") from e
        with self._lock:
            if self._closed:
                w.kill()
                raise GraderClosed("grader is closed")
            self._procs.add(w.proc)
        return w

    def _acquire(self) -> _Worker:
        """An idle worker (blocks while all are busy); raises GraderClosed once closed."""
        while True:
            with self._lock:
                if self._closed:
                    raise GraderClosed("grader is closed")
            try:
                w = self._idle.get(timeout=0.5)
            except queue.Empty:
                continue
            if w is not None:
                return w
            try:  # a slot whose replacement failed to start: try again now
                return self._spawn()
            except (GraderUnavailable, GraderClosed):
                self._idle.put(None)
                raise

    def _retire(self, w: _Worker) -> None:
        """Kill ``w`` and forget it (its slot is to be refilled by the caller)."""
        w.kill()
        with self._lock:
            self._procs.discard(w.proc)
            self.restarts += 1

    def _release(self, w: _Worker, *, replace: bool) -> None:
        """Return ``w`` to the pool, or kill it and put a fresh worker in its slot."""
        new: _Worker | None = w
        if replace:
            self._retire(w)
            try:
                new = self._spawn()
            except (GraderUnavailable, GraderClosed):
                new = None  # the next _acquire retries (or finds the grader closed)
        self._idle.put(new)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return [p.pid for p in self._procs if p.poll() is None]

    def close(self) -> None:
        """Kill every worker. Further :meth:`grade` calls raise :class:`GraderClosed`."""
        with self._lock:
            self._closed = True
        self._finalizer()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- grading -----------------------------------------------------------------------------
    def grade(self, gold: str | None, pred: str | None, *, extract: bool = True) -> Verdict:
        r"""Grade one prediction.

        Args:
            gold: a gold answer (``"18"``, ``"\frac{1}{2}"``) or a whole gold solution (a GSM8K
                solution ending ``#### N``, a MATH solution with ``\boxed{}``); see
                :func:`verimath.reasoning.extract.extract_gold` with ``dataset="auto"``.
            pred: a bare answer or a whole solution. With ``extract=True`` it goes through
                :func:`verimath.reasoning.extract.extract_answer`, which keeps a bare answer (one
                short line that reads as math, :func:`~verimath.reasoning.extract.is_bare_answer`)
                whole and otherwise takes the last box, "the answer is", ``####`` or the last
                number. With ``extract=False`` it is taken as the answer (only ``$..$`` and similar
                wrappers are stripped).
            extract: see ``pred``.

        Returns:
            A Verdict (see the module docstring for statuses and ``detail`` keys).

        Raises:
            GraderUnavailable: a worker cannot start.
            GraderClosed: the grader is closed.
        """
        item = self._prepare(gold, pred, extract)
        if item.verdict is None:
            self._run_batch([item])
        assert item.verdict is not None
        return item.verdict

    def grade_many(
        self, pairs: Iterable[tuple[str | None, str | None]], *, extract: bool = True
    ) -> list[Verdict]:
        """:meth:`grade` over ``pairs``, concurrently over the workers; results in input order.

        Raises:
            GraderUnavailable: a worker cannot start.
            GraderClosed: the grader is closed.
        """
        items = [self._prepare(g, p, extract) for g, p in pairs]
        todo = [it for it in items if it.verdict is None]
        if todo:
            per = -(-len(todo) // self.config.workers)  # spread small inputs over all workers
            size = max(1, min(self.config.batch_size, per))
            batches = [todo[i : i + size] for i in range(0, len(todo), size)]
            if len(batches) == 1:
                self._run_batch(batches[0])
            else:
                with ThreadPoolExecutor(self.config.workers, thread_name_prefix="grade") as pool:
                    list(pool.map(self._run_batch, batches))
        return [it.verdict for it in items if it.verdict is not None]

    def grade_iter(
        self,
        pairs: Iterable[tuple[str | None, str | None]],
        *,
        extract: bool = True,
        chunk: int | None = None,
    ) -> Iterator[Verdict]:
        """Like :meth:`grade_many` but lazy: reads ``pairs`` and yields verdicts chunk by chunk.

        ``chunk`` pairs are graded at a time (default ``4 * workers * batch_size``), so a large
        file can be streamed with bounded memory.
        """
        size = chunk or 4 * self.config.workers * self.config.batch_size
        it = iter(pairs)
        while block := list(islice(it, size)):
            yield from self.grade_many(block, extract=extract)

    def config_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict (for run manifests)."""
        return {"version": GRADER_VERSION, **asdict(self.config)}

    # -- internals ---------------------------------------------------------------------------
    def _prepare(self, gold: str | None, pred: str | None, extract: bool) -> _Item:
        """Extract both answers and decide what needs no worker (bad gold, no answer, equal)."""
        t0 = time.perf_counter()
        g = _gold_answer(gold) if isinstance(gold, str) else None
        if not isinstance(pred, str) or not pred.strip():
            p = None
        else:
            p = extract_answer(pred) if extract else (clean_answer(pred) or None)
        item = _Item(g, p, {"gold": g, "pred": p, "grader": GRADER_VERSION})
        if self.config.raw_extraction:
            item.gold_raw = gold if isinstance(gold, str) and gold.strip() != g else None
            raw_pred = extract and isinstance(pred, str) and pred.strip() != p
            # A boxed answer is the model's commitment: math-verify's raw extraction falls back
            # to any other $..$ or number when the box does not parse, which would let an
            # unparseable box plus a guess elsewhere in the reasoning pass as CORRECT; so of a
            # completion with boxes it sees the boxes only.
            if raw_pred and isinstance(pred, str):
                item.pred_raw = boxes_only(pred) or pred
            # an answer offering alternatives ("7 or 8") is graded as what it says; math-verify's
            # raw extraction would keep only its first member (issue 18)
            if offers_alternatives(p):
                item.pred_raw = None

        def done(status: VerdictStatus, reason: str) -> _Item:
            item.finish(status, reason, time.perf_counter() - t0)
            return item

        if g is None:
            if item.gold_raw is None or not _has_math(item.gold_raw) or p is None:
                return done(VerdictStatus.BAD_GOLD, "no gold answer")
            item.gold = ""  # "$12$ and $13$": only math-verify's extraction of the raw gold
            return item
        problem = _gold_problem(g)
        if problem:
            return done(VerdictStatus.BAD_GOLD, problem)
        gmc = mc_choice(g)
        if gmc is not None and extract and isinstance(pred, str) and p is None:
            letter = find_choice(pred)  # "The correct option is (B).": no other answer found
            if letter is not None:
                p = item.pred = item.detail["pred"] = letter
        if p is None:
            empty = not isinstance(pred, str) or not pred.strip()
            return done(VerdictStatus.NO_ANSWER, "empty prediction" if empty else "no answer found")
        if self.config.string_fast_path and normalize_answer(g) == normalize_answer(p):
            return done(VerdictStatus.CORRECT, "identical after normalization")
        if gmc is not None:
            pmc = mc_choice(p)
            if pmc is not None:
                same = pmc[0] == gmc[0]
                return done(VerdictStatus.CORRECT if same else VerdictStatus.WRONG,
                            f"multiple choice: {pmc[0]} vs gold {gmc[0]}")
            if gmc[1]:  # "C. x = 42" vs "x = 42": compare with the option text
                item.gold, item.gold_raw = gmc[1], None
                item.detail["gold_option"] = gmc[1]
        return item

    def _run_batch(self, items: list[_Item]) -> None:
        """Judge ``items`` on one worker, re-sending the rest after a timeout or crash.

        Items whose first try failed are then re-checked (:meth:`_settle`).
        """
        todo = items
        while todo:
            done = self._run_on_worker(todo)
            todo = todo[done:]
        for it in items:
            if it.recheck:
                self._settle(it)

    def _recheck(self, payload: tuple[str, str, str | None, str | None]
                 ) -> tuple[str, dict[str, Any] | None]:
        """Run one pair on a fresh worker with the CPU-time limit.

        Returns:
            ``("reply", reply)``, ``("cpu", None)`` (used its CPU time limit),
            ``("overloaded", None)`` (the wall-clock cap passed first) or ``("died", None)``.
        """
        self._retire(self._acquire())
        with self._lock:
            self.rechecks += 1
        try:
            w = self._spawn()
        except (GraderUnavailable, GraderClosed):
            self._idle.put(None)
            raise
        ok = False
        try:
            self._ready_send(w, [payload])
            reply = w.receive_cpu(self.config.timeout_s,
                                  self.config.timeout_s * self.config.retry_wall_factor)
            ok = True
            return "reply", reply
        except _Timeout:
            return "cpu", None
        except _Overloaded:
            return "overloaded", None
        except _WorkerDied:
            return "died", None
        finally:
            self._release(w, replace=not ok)

    def _gold_evaluates(self, item: _Item) -> bool | None:
        """Whether the gold alone evaluates within the limits; None when that is unknown.

        Two checks on fresh workers, cached per gold: the gold against itself must verify, and
        the gold against a plain ``0`` must not run out of a limit (a gold such as
        ``9^{9^{9^{9}}}`` is equal to itself at once but hangs against any other number).
        """
        key = (item.gold, item.gold_raw)
        with self._lock:
            known = self._gold_checked.get(key)
        if known is not None:
            return known
        result = True
        for pred, pred_raw, need_equal in ((str(item.gold), item.gold_raw, True),
                                           ("0", None, False)):
            kind, reply = self._recheck((str(item.gold), pred, item.gold_raw, pred_raw))
            if kind == "cpu":
                result = False
            elif kind != "reply" or reply is None:
                return None  # the check itself could not run
            elif reply.get("status") == "bad_gold" or reply.get("limit"):
                result = False
            elif need_equal and reply.get("status") != "correct":
                result = False
            if not result:
                break
        with self._lock:
            if len(self._gold_checked) > 4096:
                self._gold_checked.clear()
            self._gold_checked[key] = result
        return result

    def _settle(self, item: _Item) -> None:
        """Decide an item whose first try failed: input-caused (judged) or could not judge."""
        first = item.verdict
        assert first is not None
        t0 = time.perf_counter()
        kind, reply = self._recheck(item.payload())
        item.detail["first_try"] = {"status": str(first.status), "reason": first.reason}
        item.detail["recheck"] = kind
        item.recheck = False
        reproduced = kind == "cpu" or (
            kind == "reply" and reply is not None and reply.get("status") == "error"
            and reply.get("cause") == "input")
        if kind == "reply" and reply is not None and not reproduced:
            extra = {k: reply[k] for k in ("gold_parsed", "pred_parsed") if k in reply}
            item.finish(VerdictStatus(reply.get("status", "error")),
                        f"{reply.get('reason', '')} (re-checked on a fresh worker after: "
                        f"{first.reason})", time.perf_counter() - t0, **extra)
            return
        if not reproduced:
            why = {"died": "the re-check's worker died too",
                   "overloaded": "the machine was too loaded to give the re-check "
                                 f"{self.config.timeout_s:g} s of CPU time"}[kind]
            item.finish(first.status, f"{first.reason}; {why}: could not judge",
                        time.perf_counter() - t0)
            return
        what = (f"used {self.config.timeout_s:g} s of CPU time" if kind == "cpu"
                else str((reply or {}).get("reason", "failed")))
        gold_ok = self._gold_evaluates(item)
        if gold_ok is None:
            item.finish(first.status, f"{first.reason}; reproduced ({what}), but the gold "
                        "check could not be run: could not judge", time.perf_counter() - t0)
        elif gold_ok:
            item.finish(VerdictStatus.UNVERIFIABLE,
                        f"the answer could not be evaluated within the limits: {what} twice, "
                        "on fresh workers, while the gold alone evaluates",
                        time.perf_counter() - t0)
        else:
            item.finish(VerdictStatus.BAD_GOLD,
                        f"the gold answer alone could not be evaluated within the limits ({what})",
                        time.perf_counter() - t0)

    def _run_on_worker(self, items: list[_Item]) -> int:
        """Send ``items`` to an idle worker; sets verdicts in order. Returns how many got one.

        Stops after the first item that times out or kills the worker (that item gets TIMEOUT
        or ERROR; the worker is replaced); the caller re-sends the remaining items.
        """
        payload = [(str(it.gold), str(it.pred), it.gold_raw, it.pred_raw) for it in items]
        w: _Worker | None = self._acquire()
        replace = False
        try:
            assert w is not None
            try:
                info = self._ready_send(w, payload)
            except _WorkerDied:
                # died while idle (killed from outside; nothing of ours ran on it): replace it
                # and retry once; a fresh worker that dies too means a broken setup
                self._release(w, replace=True)
                w = None
                w = self._acquire()
                try:
                    info = self._ready_send(w, payload)
                except _WorkerDied as e:
                    replace = True
                    raise GraderUnavailable(f"grader worker failed to start: {e}") from e
            n, replace = self._collect(w, items, info)
            return n
        except BaseException:
            replace = True
            raise
        finally:
            if w is not None:
                self._release(w, replace=replace)

    def _ready_send(
        self, w: _Worker, payload: list[tuple[str, str, str | None, str | None]]
    ) -> dict[str, Any]:
        """Wait until ``w`` has started, send ``payload``; returns its hello message."""
        info = w.wait_ready(self.config.start_timeout_s)
        w.send(payload)
        return info

    def _collect(self, w: _Worker, items: list[_Item], info: dict[str, Any]) -> tuple[int, bool]:
        """Read one reply per item, each within ``timeout_s`` of the previous one.

        Returns ``(items decided, worker must be replaced)``.
        """
        t_prev = time.perf_counter()
        for n, item in enumerate(items, start=1):
            try:
                res = w.receive(self.config.timeout_s)
            except _Timeout:
                limit = f"{self.config.timeout_s:g} s"
                item.finish(VerdictStatus.TIMEOUT,
                            f"no verdict within {limit}; worker killed and replaced",
                            time.perf_counter() - t_prev)
                item.recheck = True
                return n, True
            except _WorkerDied as e:
                item.finish(VerdictStatus.ERROR, f"grader worker died mid-item: {e}",
                            time.perf_counter() - t_prev)
                item.recheck = True
                return n, True
            now = time.perf_counter()
            extra: dict[str, Any] = {
                k: res[k] for k in ("gold_parsed", "pred_parsed") if k in res
            }
            extra["math_verify"] = info.get("math_verify")
            item.finish(VerdictStatus(res.get("status", "error")), str(res.get("reason", "")),
                        now - t_prev, **extra)
            item.recheck = res.get("status") == "error" and res.get("cause") == "input"
            t_prev = now
        return len(items), False


def grade_attempts(grader: Any, pairs: list[tuple[str | None, Attempt]]) -> list[Verdict]:
    """Grade rollout attempts against gold answers: the one rule eval and datagen share.

    A chain-of-thought attempt (no tool calls) is graded from its whole completion text with
    extraction on, so math-verify's own extraction sees the raw text (relations, matrices,
    several boxes) exactly as :meth:`Grader.grade` does for a whole solution; its answer is
    the same ``extract_answer`` result the rollout stored. A program-of-thought / TIR attempt
    is graded from its stored ``answer`` (program output or written answer) with extraction
    off: its raw text holds tool output, whose numbers must not stand in for an answer.

    Args:
        grader: a :class:`Grader` or anything with its ``grade_many(pairs, extract=)``
            (e.g. ``verimath.reasoning.service.client.RemoteGrader``).
        pairs: ``(gold, attempt)`` in order; gold None gives BAD_GOLD as in ``grade``.

    Returns:
        One Verdict per pair, in input order.

    Raises:
        GraderUnavailable: a worker cannot start.
        GraderClosed: the grader is closed.
    """
    raw = [i for i, (_, a) in enumerate(pairs) if not a.tool_calls]
    raw_set = set(raw)
    given = [i for i in range(len(pairs)) if i not in raw_set]
    out: list[Verdict | None] = [None] * len(pairs)
    for idx, extract in ((raw, True), (given, False)):
        if not idx:
            continue
        texts = [(pairs[i][0], pairs[i][1].text if extract else pairs[i][1].answer) for i in idx]
        for i, v in zip(idx, grader.grade_many(texts, extract=extract), strict=True):
            out[i] = v
    return [v for v in out if v is not None]
