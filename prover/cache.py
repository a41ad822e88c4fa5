"""On-disk verdict cache: re-checking a corpus is free.

A verdict is keyed by (statement hash, proof hash, Lean toolchain, Mathlib revision, audit
version): the same proof of the same statement checked by the same Lean with the same audit
gives the same verdict. Only judged verdicts (CORRECT / WRONG) are stored; TIMEOUT and ERROR
are retried next time. Storage is :class:`verimath.jobs.JobStore` (append-only JSONL under an
``fcntl.flock``, torn-line safe), so concurrent jobs, in threads or separate processes, share one
cache file: a verdict one job stores is seen by the others.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from verimath.jobs import DuplicateKeyError, JobStore
from verimath.prover.audit import AUDIT_VERSION
from verimath.prover.types import LeanVersion, ProofTask
from verimath.records import Verdict, content_hash, judged


def cache_key(task: ProofTask, lean: LeanVersion) -> str:
    """The cache key of ``task`` checked with ``lean`` (hex string)."""
    return content_hash(task.statement_hash, task.proof_hash, lean.toolchain, lean.mathlib_rev,
                        AUDIT_VERSION)


class VerdictCache:
    """Append-only verdict cache in ``path`` (a JSONL file, created on first use).

    Args:
        path: the cache file (e.g. ``~/.cache/verimath/verdicts.jsonl``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._store = JobStore(self.path)
        self._lock = threading.Lock()

    def get(self, task: ProofTask, lean: LeanVersion) -> Verdict | None:
        """The cached verdict for ``task`` under ``lean`` (``detail["cached"] = True``), or None."""
        with self._lock:
            rec = self._store.get(cache_key(task, lean))
        if rec is None:
            return None
        v = Verdict.from_dict(rec["verdict"], where=str(self.path))
        return Verdict(v.status, v.reason, {**v.detail, "cached": True})

    def put(self, task: ProofTask, lean: LeanVersion, verdict: Verdict) -> bool:
        """Store a judged verdict; returns False (and stores nothing) for TIMEOUT / ERROR.

        Also False when the key is already stored (another job checked the same proof first:
        the verdict of the same check is the same).
        """
        if not judged(verdict):
            return False
        with self._lock:
            try:
                self._store.add(cache_key(task, lean), {"verdict": verdict.to_dict()})
            except DuplicateKeyError:
                return False
            return True

    def __len__(self) -> int:
        return len(self._store)

    def close(self) -> None:
        """Close the underlying file."""
        self._store.close()
