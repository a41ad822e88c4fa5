"""The job engine shared by ``eval``, ``prove`` and ``datagen``: store, fingerprint, retries.

Three rules every long job follows (README "Resuming a run"):

1. **A keyed, append-only, locked store** (:class:`JobStore`). One JSON line per work item,
   written with one ``write`` under an exclusive ``fcntl.flock`` and fsynced, so two processes
   appending to one file never interleave. On open a damaged middle line is skipped and
   reported by line number (``JobStore.damaged``) and never truncated; only an unterminated
   last line (a writer killed mid-``write``) is cut. Adding a key that is already stored is
   an error (:class:`DuplicateKeyError`), never a silent no-op.
2. **A fingerprint of the whole resolved config** (:func:`settings_of`, :func:`check_settings`)
   minus an explicit list of keys that cannot change results (:data:`NON_RESULT_KEYS`). A resume
   whose settings differ from the stored ones is refused with the differing keys named
   (:class:`SettingsMismatch`); nothing on disk is touched.
3. **Could-not-judge outcomes are not final.** A work item whose outcome hit an
   infrastructure failure is stored under a numbered try (:func:`try_key`); a resume runs it
   again, at most ``retries`` more times (:func:`plan_tries`), and what stays unjudged is
   counted and reported.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from verimath.records import content_hash

log = logging.getLogger(__name__)

#: Dotted config keys (``fnmatch`` patterns) left out of a job's settings fingerprint, each with
#: the reason it cannot change a stored result. Everything else in the resolved config is in.
NON_RESULT_KEYS: dict[str, str] = {
    "out": "the output folder itself",
    "limit": "selects how many problems run, not what a problem's record holds",
    "shard": "selects which problems this process runs (records are keyed by problem id)",
    "progress": "progress display",
    "report": "writing report.html at the end (a view of the results; `verimath view`)",
    "max_inflight": "generation/verification overlap (outputs are collected in input order)",
    "torch_threads": "CPU thread count",
    "*workers": "worker-process counts (sandbox, grader, Lean REPL pools)",
    "*max_concurrency": "HTTP request concurrency",
    "*.concurrency": "requests in flight at once",
    "*api_key_env": "where an API key is read from",
    "*.api_key_file": "where an API key is read from",
    "*.endpoints": "which remote sandbox / grader servers run the work (same code, same limits)",
    "sandbox.retries": "retries on another endpoint (a failure is an infra error, not a result)",
    "grader.retries": "retries on another endpoint (a failure is an infra error, not a result)",
    "prover.url": "where the Lean server runs (its toolchain / Mathlib are fingerprinted)",
    "backend.max_retries": "HTTP retry count (a failed request is an error, not a result)",
    "sandbox.warmup": "pre-starting interpreters",
    "sandbox.startup_timeout_s": "interpreter start-up wait (failure is an infra error)",
    "grader.start_timeout_s": "grader worker start-up wait (failure is an infra error)",
    "verdict_cache": "the Lean verdict cache returns the verdict the checker would give",
    "cache_path": "where the verdict cache lives",
    "infra_retries": "how often could-not-judge work is retried",
    "export.*": "datagen export formats / hub push (stage results are unchanged)",
}


#: Training keys that cannot change the trained weights, on top of
#: :data:`NON_RESULT_KEYS` (``fnmatch`` patterns over dotted keys, with the reason).
TRAIN_NON_RESULT_KEYS: dict[str, str] = {
    "output_dir": "the run folder itself",
    "train.resume": "whether / from where to resume (checked here only for the folder's own "
                    "checkpoints)",
    "train.max_steps": "how long to train: resuming with a larger value continues the run",
    "train.num_train_epochs": "how long to train (as train.max_steps)",
    "train.logging_steps": "logging cadence",
    "train.save_steps": "checkpoint cadence",
    "train.save_total_limit": "how many checkpoints are kept",
    "train.report_to": "where metrics are logged",
    "train.torch_threads": "CPU thread count",
}

#: keys of the iterate config left out of its settings fingerprint, beyond NON_RESULT_KEYS.
ITERATE_NON_RESULT_KEYS: dict[str, str] = {
    **NON_RESULT_KEYS,
    # the same keys inside the sub-job configs (eval.infra_retries, seed.export.formats, ...);
    # not ``limit``: iterate reuses finished phases, so the problem slices stay fingerprinted
    **{f"*.{k}": why for k, why in NON_RESULT_KEYS.items()
       if not k.startswith("*") and k != "limit"},
    "rounds": "how many rounds run (a finished round does not depend on later ones)",
    "*torch_threads": "CPU thread count",
    "*.out": "set per round by iterate (inside OUT)",
    "sft.output_dir": "set per round by iterate (inside OUT)",
    "sft.data.path": "set per round by iterate (the round's train.jsonl)",
    "*.backend.model": "set per round by iterate (the round's model)",
    "sft.model": "set per round by iterate (base or previous round's model)",
    "grpo.job.model": "set per round by iterate (the round's SFT model)",
    "grpo.job.output_dir": "set per round by iterate (inside OUT)",
    "grpo.job.data.source": "set per round by iterate (the seed data's problems)",
    "dpo.job.model": "set per round by iterate (the round's model before DPO)",
    "dpo.job.output_dir": "set per round by iterate (inside OUT)",
    "dpo.job.data.path": "set per round by iterate (the round's preference pairs)",
}


def non_result_keys(job: str = "") -> dict[str, str]:
    """The one list of keys that cannot change a stored result, for ``job``.

    Args:
        job: ``""`` (eval, prove, datagen: :data:`NON_RESULT_KEYS`), ``"train"`` (SFT, GRPO,
            DPO: plus :data:`TRAIN_NON_RESULT_KEYS`) or ``"iterate"``
            (:data:`ITERATE_NON_RESULT_KEYS`, which already holds the others inside sub-jobs).

    Raises:
        ValueError: an unknown job.
    """
    if job == "":
        return dict(NON_RESULT_KEYS)
    if job == "train":
        return {**NON_RESULT_KEYS, **TRAIN_NON_RESULT_KEYS}
    if job == "iterate":
        return dict(ITERATE_NON_RESULT_KEYS)
    raise ValueError(f"no non-result key list for job {job!r}; use '', 'train' or 'iterate'")


class DuplicateKeyError(ValueError):
    """``JobStore.add`` found its key already stored."""


class SettingsMismatch(ValueError):
    """A resume found different settings in the output folder.

    Attributes:
        keys: the dotted config keys whose values differ (sorted).
    """

    def __init__(self, where: str, diff: dict[str, tuple[Any, Any]],
                 message: str | None = None) -> None:
        self.keys = sorted(diff)
        shown = "; ".join(f"{k}: stored {diff[k][0]!r}, now {diff[k][1]!r}" for k in self.keys)
        super().__init__(message or (
            f"{where} holds a run with different settings ({shown}); use another --out, "
            "or delete the folder to start over"))


# ---------------------------------------------------------------------------------- store


class JobStore:
    """Keyed append-only JSONL of ``{key_field: key, **record}`` lines, shared safely.

    Args:
        path: the JSONL file; created (with parents) if missing.
        key_field: the field holding each record's unique key (default ``"key"``).

    Attributes:
        damaged: 1-based line numbers of unparsable (or key-less) complete lines, skipped.

    Every read of the file and every append happens under ``flock(LOCK_EX)`` on the file
    itself; lines other processes appended since are picked up before each append and on a
    lookup miss, so concurrent jobs (e.g. a shared Lean verdict cache) see each other's work.
    """

    def __init__(self, path: str | os.PathLike[str], key_field: str = "key") -> None:
        self.path = Path(path)
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, dict[str, Any]] = {}
        self.damaged: list[int] = []
        self._offset = 0
        self._lines = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        with self._locked():
            self._refresh()

    # -- locking / reading

    class _Lock:
        def __init__(self, fd: int) -> None:
            self.fd = fd

        def __enter__(self) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

        def __exit__(self, *exc: object) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _locked(self) -> JobStore._Lock:
        return JobStore._Lock(self._fd)

    def _refresh(self) -> None:
        """Index lines written since the last read (caller holds the lock)."""
        size = os.fstat(self._fd).st_size
        if size == self._offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:  # unterminated last line: a writer died mid-write
                log.warning("%s: cutting an unterminated last line (%d bytes) left by an "
                            "interrupted writer", self.path, len(data) - pos)
                os.ftruncate(self._fd, self._offset + pos)
                break
            raw = data[pos:nl + 1]
            pos = nl + 1
            self._lines += 1
            if raw.strip():
                self._index_line(raw)
        self._offset += pos

    def _index_line(self, raw: bytes) -> None:
        try:
            rec = json.loads(raw)
            key = str(rec[self.key_field])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            self.damaged.append(self._lines)
            log.warning("%s:%d: damaged line skipped (kept in the file)", self.path, self._lines)
            return
        if key in self._records:
            log.warning("%s:%d: key %s stored twice; keeping the first", self.path,
                        self._lines, key)
            return
        self._records[key] = rec

    # -- mapping API

    def __contains__(self, key: object) -> bool:
        return self.get(str(key)) is not None

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key`` (by this or another process), or None.

        After :meth:`close` only what was already read is returned.
        """
        rec = self._records.get(key)
        if rec is None and self._fd >= 0:  # closed: what was read stays readable
            with self._locked():
                self._refresh()
            rec = self._records.get(key)
        return rec

    def keys(self) -> list[str]:
        """Stored keys in the order they were first written."""
        return list(self._records)

    def records(self) -> Iterator[dict[str, Any]]:
        """All records in the order they were first written."""
        return iter(list(self._records.values()))

    def add(self, key: str, record: dict[str, Any]) -> None:
        """Append ``record`` under ``key``, durably (one ``write`` under the lock + fsync).

        Raises:
            DuplicateKeyError: ``key`` is already stored (by this or another process).
        """
        rec = {self.key_field: key, **record}
        line = (json.dumps(rec, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._locked():
            self._refresh()
            if key in self._records:
                raise DuplicateKeyError(f"{self.path}: key {key!r} is already stored")
            start = os.lseek(self._fd, 0, os.SEEK_END)
            try:
                view = memoryview(line)
                while view:  # a short write (full disk) must not fuse with the next line
                    view = view[os.write(self._fd, view):]
                os.fsync(self._fd)
            except BaseException:
                os.ftruncate(self._fd, start)  # nothing half-written stays behind
                raise
            self._offset += len(line)
            self._lines += 1
            self._records[key] = rec

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- fingerprint


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists/tuples become lists (JSON form)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return json.loads(json.dumps(out, default=str))


def _ignored(key: str, ignore: Mapping[str, str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pat) for pat in ignore)


def settings_of(config: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None,
                only: tuple[str, ...] | None = None,
                ignore: Mapping[str, str] = NON_RESULT_KEYS) -> dict[str, Any]:
    """The settings a job's results depend on: the flattened config minus ``ignore``.

    Args:
        config: the job's whole resolved config as a (nested) dict.
        extra: things outside the config that change results (prompt-template hash, grader
            version, the model id a backend reports, Lean version...), stored as ``@name``.
        only: keep just keys equal to or under these dotted prefixes (a datagen stage keeps
            the sections it reads); None keeps the whole config.
        ignore: ``fnmatch`` patterns of keys that cannot change results.

    Returns:
        A flat, JSON-ready ``{dotted_key: value}`` dict.
    """
    flat = flatten(config)
    keep = {k: v for k, v in flat.items() if not _ignored(k, ignore) and (
        only is None or any(k == p or k.startswith(p + ".") for p in only))}
    for k, v in (extra or {}).items():
        keep[f"@{k}"] = json.loads(json.dumps(v, default=str))
    return dict(sorted(keep.items()))


def fingerprint_of(settings: Mapping[str, Any]) -> str:
    """Content hash of a :func:`settings_of` dict (16 hex chars)."""
    return content_hash(json.dumps(dict(settings), sort_keys=True, default=str))


def diff_settings(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (old, new)}`` for keys whose values differ (a missing key reads as ``None``)."""
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)}


def check_settings(path: str | os.PathLike[str], settings: Mapping[str, Any], *,
                   has_work: bool, field: str = "settings") -> None:
    """Refuse to resume into a folder whose stored settings differ from ``settings``.

    Args:
        path: the JSON file holding the stored settings under ``field`` (``manifest.json``).
        settings: this run's :func:`settings_of` dict.
        has_work: whether results are already stored next to it (no results: nothing to mix).
        field: the JSON field holding the settings.

    Raises:
        SettingsMismatch: stored settings differ; names every differing key. A folder written
            before settings were recorded (no ``field``) is refused too, since it cannot be
            checked.
    """
    p = Path(path)
    if not has_work or not p.exists():
        return
    stored = json.loads(p.read_text(encoding="utf-8")).get(field)
    if stored is None:
        raise SettingsMismatch(str(p.parent), {}, message=(
            f"{p.parent} holds results written without a settings record (an older verimath), "
            "so a resume cannot check that they match; use another --out, or delete the folder "
            "to start over"))
    diff = diff_settings(stored, settings)
    if diff:
        raise SettingsMismatch(str(p.parent), diff)


# -------------------------------------------------------------------------------- retries


def try_key(key: str, attempt: int) -> str:
    """The store key of try ``attempt`` (0-based) of work item ``key``; try 0 is ``key``."""
    return key if attempt == 0 else f"{key}~retry{attempt}"


def latest_try(store: JobStore, key: str, max_tries: int) -> tuple[int, dict[str, Any] | None]:
    """``(tries stored, last stored record or None)`` of work item ``key``."""
    last, n = None, 0
    for t in range(max_tries + 64):  # tolerate more tries stored by a run with more retries
        rec = store.get(try_key(key, t))
        if rec is None:
            break
        last, n = rec, t + 1
    return n, last


def plan_tries(store: JobStore, keys: list[str], retries: int, *,
               unjudged: str = "unjudged") -> tuple[dict[str, int], list[str]]:
    """Which work items to (re)run now, and under which try number.

    Args:
        store: the stage / job store.
        keys: every work item's key.
        retries: how many more times an item whose stored outcome is unjudged (the record's
            ``unjudged`` field is truthy) is run again; 0 makes the first outcome final.
        unjudged: the record field marking a could-not-judge outcome.

    Returns:
        ``({key: try number to run}, [keys whose outcome stays unjudged, retries spent]))``.
    """
    todo: dict[str, int] = {}
    stuck: list[str] = []
    for k in keys:
        n, last = latest_try(store, k, 1 + retries)
        if last is None:
            todo[k] = 0
        elif last.get(unjudged):
            if n <= retries:
                todo[k] = n
            else:
                stuck.append(k)
    return todo, stuck


class JobRecords:
    """A job's results: ``records.jsonl`` (final) plus ``retries.jsonl`` (could-not-judge tries).

    Args:
        out: the job folder.
        key_field: the records' key field (``"id"``).
        retries: how many more times a work item whose record is unjudged is run again on
            resume before its record is final.
        unjudged: ``record -> bool``: the record holds an infrastructure failure.

    A record that is judged, or whose retries are spent, goes to ``records.jsonl``; an unjudged
    one with retries left goes to ``retries.jsonl`` under its try key (:func:`try_key`), and the
    item is run again by the next run on the folder. :meth:`get` returns the final record or
    the latest provisional one, so a summary always covers every problem (infra failures
    counted, never scored).
    """

    def __init__(self, out: str | os.PathLike[str], *, key_field: str = "id", retries: int = 2,
                 unjudged: Any = None) -> None:
        self.retries = max(0, retries)
        self.key_field = key_field
        self._unjudged = unjudged or (lambda rec: False)
        self.final = JobStore(Path(out) / "records.jsonl", key_field=key_field)
        self.pending = JobStore(Path(out) / "retries.jsonl", key_field="try_key")

    def tries(self, key: str) -> tuple[int, dict[str, Any] | None]:
        """``(provisional tries stored, the latest one without its try key, or None)``."""
        n, rec = latest_try(self.pending, key, 1 + self.retries)
        return n, ({k: v for k, v in rec.items() if k != "try_key"} if rec else None)

    def __contains__(self, key: object) -> bool:
        """Done: a final record, or provisional tries beyond the retry budget."""
        return key in self.final or self.tries(str(key))[0] > self.retries

    def get(self, key: str) -> dict[str, Any] | None:
        """The final record of ``key``, else its latest provisional one, else None."""
        return self.final.get(key) or self.tries(key)[1]

    def add(self, key: str, record: dict[str, Any]) -> bool:
        """Store a try of ``key``; returns True when it is final.

        Raises:
            DuplicateKeyError: ``key`` already has a final record.
        """
        n, _ = self.tries(key)
        if self._unjudged(record) and n < self.retries:
            self.pending.add(try_key(key, n), record)
            return False
        self.final.add(key, {k: v for k, v in record.items() if k != self.key_field})
        return True

    def close(self) -> None:
        """Close both files."""
        self.final.close()
        self.pending.close()


def has_results(out: str | os.PathLike[str]) -> bool:
    """Whether a job folder holds any stored result (final or provisional)."""
    return any((Path(out) / n).exists() and (Path(out) / n).stat().st_size > 0
               for n in ("records.jsonl", "retries.jsonl"))


# ------------------------------------------------------------------------------- sharding


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0-based shard ``I`` of ``N``) -> ``(I, N)``; None or ``""`` -> None.

    Raises:
        ValueError: not ``I/N`` with ``0 <= I < N``.
    """
    if spec is None or str(spec).strip() == "":
        return None
    try:
        i_s, n_s = str(spec).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise ValueError(f"shard={spec!r}: use I/N, e.g. 0/4 (shard I of N, 0-based)") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"shard={spec!r}: need 0 <= I < N (shards are 0-based, like "
                         "$SLURM_ARRAY_TASK_ID of an --array=0-(N-1) job)")
    return i, n


def shard_of(key: str, n: int) -> int:
    """Which of ``n`` shards work item ``key`` belongs to.

    A hash of the key: deterministic, independent of input order, machine and hash seed.
    """
    return int(content_hash("shard-v1", key), 16) % n


def select_shard(keys: list[str], spec: str | None) -> list[int]:
    """Indices into ``keys`` of the items shard ``spec`` runs (all of them when None)."""
    sh = parse_shard(spec)
    if sh is None:
        return list(range(len(keys)))
    i, n = sh
    return [j for j, k in enumerate(keys) if shard_of(k, n) == i]


def shard_manifest(spec: str | None, all_keys: list[str], index: list[int]) -> dict[str, Any]:
    """Manifest entries that let :func:`merge_shards` check coverage.

    Args:
        spec: the ``--shard`` value (None: unsharded).
        all_keys: every work item's key before sharding, in order (the whole problem set).
        index: positions in ``all_keys`` of this shard's items (:func:`select_shard`).

    Returns:
        ``{"shard", "work_keys", "work_index", "n_all", "all_keys_hash"}``; the last two let a
        merge refuse shards that were cut from different problem sets (another ``limit``, a
        changed benchmark file).
    """
    return {"shard": spec, "work_keys": [all_keys[i] for i in index], "work_index": index,
            "n_all": len(all_keys), "all_keys_hash": content_hash(json.dumps(all_keys))}


class MergeError(ValueError):
    """Shard folders that cannot be merged (different settings, overlaps, gaps, unfinished)."""


def merge_shards(outs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 key_field: str = "id") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Merge the ``records.jsonl`` of shard folders into ``out`` (an empty or new folder).

    Every shard must come from the same job with the same settings (the fingerprint ignores
    ``shard``), the shard specs must be ``0/N .. N-1/N`` exactly once each, every shard must be
    finished (a record for each of its work items), and no work item may be in two shards.

    Args:
        outs: the shard output folders.
        out: where the merged ``records.jsonl``, ``errors.jsonl`` and ``manifest.json`` go.
        key_field: the records' key field.

    Returns:
        ``(manifest, records)``: the merged manifest (``shard`` None, ``merged_from`` listing the
        shards) and the records in the order an unsharded run lists them; the caller writes the
        job's summary files from them.

    Raises:
        MergeError: what is wrong, naming the shard folders and keys.
    """
    from verimath.store import atomic_write_json

    mans = check_shard_set(outs)
    first = mans[0]
    rows: dict[int, dict[str, Any]] = {}
    owner: dict[str, str] = {}
    for o, m in zip(outs, mans, strict=True):
        keys, index = m.get("work_keys") or [], m.get("work_index") or []
        store = JobRecords(o, key_field=key_field)
        try:
            missing_recs = [k for k in keys if store.get(k) is None]
            if missing_recs:
                raise MergeError(f"{o} is unfinished: {len(missing_recs)} of {len(keys)} work "
                                 f"items have no record (e.g. {missing_recs[0]}); resume it first")
            for k, pos in zip(keys, index, strict=True):
                if k in owner or pos in rows:
                    raise MergeError(f"work item {k} is in both {owner.get(k)} and {o}")
                owner[k] = str(o)
                rows[pos] = store.get(k)  # type: ignore[assignment]
        finally:
            store.close()
    dest = Path(out)
    if (dest / "records.jsonl").exists():
        raise MergeError(f"{dest} already holds records; merge into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    records = [rows[p] for p in sorted(rows)]
    with JobStore(dest / "records.jsonl", key_field=key_field) as merged:
        for r in records:
            merged.add(str(r[key_field]), {k: v for k, v in r.items() if k != key_field})
    err = Path(outs[0]) / "errors.jsonl"  # every shard loads the same input: same errors
    if err.exists():
        shutil_copy(err, dest / "errors.jsonl")
    manifest = {**first, "shard": None, "work_keys": [str(r[key_field]) for r in records],
                "work_index": sorted(rows), "merged_from": [str(o) for o in outs],
                "n_problems": len(records)}
    atomic_write_json(dest / "manifest.json", manifest)
    return manifest, records


def check_shard_set(outs: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """The manifests of ``outs`` after checking they are the shards ``0/N .. N-1/N`` of one job.

    Raises:
        MergeError: different jobs or settings, a folder that is not a shard (or has no
            manifest: unfinished), shards of different ``N``, a shard missing or given twice.
    """
    if not outs:
        raise MergeError("no shard folders given")
    mans = [_read_manifest(Path(o)) for o in outs]
    first = mans[0]
    for o, m in zip(outs[1:], mans[1:], strict=True):
        if m.get("job") != first.get("job"):
            raise MergeError(f"{o} is a {m.get('job')} run, {outs[0]} a {first.get('job')} run")
        diff = diff_settings(first.get("settings") or {}, m.get("settings") or {})
        if diff:
            raise MergeError(f"{o} and {outs[0]} have different settings: "
                             f"{', '.join(sorted(diff))}")
    sets = {(m.get("n_all"), m.get("all_keys_hash")) for m in mans}
    if len(sets) > 1:
        raise MergeError("the shards were cut from different problem sets (another limit or "
                         f"benchmark file): item counts {sorted(str(n) for n, _ in sets)}")
    specs = [parse_shard(m.get("shard")) for m in mans]
    if any(s is None for s in specs):
        bad = [str(o) for o, s in zip(outs, specs, strict=True) if s is None]
        raise MergeError(f"not a shard (no --shard I/N): {', '.join(bad)}")
    ns = {s[1] for s in specs}  # type: ignore[index]
    if len(ns) != 1:
        raise MergeError(f"shards of different splits: {sorted(ns)} (one N for all)")
    n = ns.pop()
    got = sorted(s[0] for s in specs)  # type: ignore[index]
    if got != list(range(n)):
        dup = sorted({i for i in got if got.count(i) > 1})
        missing = sorted(set(range(n)) - set(got))
        parts = ([f"given twice: {dup}"] if dup else []) + (
            [f"missing: {missing}"] if missing else [])
        raise MergeError(f"shards of {n}: " + "; ".join(parts))
    return mans


def _read_manifest(out: Path) -> dict[str, Any]:
    p = out / "manifest.json"
    if not p.exists():
        raise MergeError(f"{out}: no manifest.json (not a finished job folder)")
    return json.loads(p.read_text(encoding="utf-8"))


def shutil_copy(src: Path, dst: Path) -> None:
    """Copy a small file atomically."""
    from verimath.store import atomic_write_text

    atomic_write_text(dst, src.read_text(encoding="utf-8"))
