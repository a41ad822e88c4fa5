"""``verimath merge`` for datagen: join shard folders into the files of one unsharded run.

The shards' stage files are unioned (every shard stores the same load / dedup / decontaminate
lines and its own share of the later stages; a key stored by two shards with different
contents is an overlap and refused), then the pipeline is replayed in the merged folder with
``replay_only``: every outcome is read from the store, nothing is generated or checked, and the
export, funnel and manifest come out as an unsharded run writes them.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from verimath.jobs import JobStore, MergeError, check_shard_set, flatten

log = logging.getLogger(__name__)


class _Replayed:
    """Stands in for the model during a replay: has the model id, refuses to generate."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def generate(self, prompts: Any, params: Any) -> Any:  # noqa: D102
        raise MergeError("replaying merged shards needed a new generation (unfinished shard?)")

    def close(self) -> None:  # noqa: D102
        pass


def _stored_id(stages: Path, stage: str, key: str) -> str | None:
    p = stages / f"{stage}.settings.json"
    if not p.exists():
        return None
    return json.loads(p.read_text(encoding="utf-8")).get("settings", {}).get(key)


def merge_runs(outs: list[str], out: str) -> Any:
    """Merge datagen shard folders ``outs`` into the new folder ``out``.

    Returns:
        The :class:`verimath.datagen.pipeline.DatagenReport` of the replay.

    Raises:
        MergeError: shards that do not fit (see :func:`verimath.jobs.check_shard_set`), an
            overlap, or a work item no shard stored.
    """
    from verimath.config import load_config
    from verimath.datagen.config import DatagenConfig
    from verimath.datagen.pipeline import Components, main

    mans = check_shard_set(outs)
    dest = Path(out)
    if (dest / "stages").exists():
        raise MergeError(f"{dest} already holds stage files; merge into a new folder")
    (dest / "stages").mkdir(parents=True)
    for o in outs:
        for f in sorted((Path(o) / "stages").glob("*.jsonl")):
            _union(f, dest / "stages" / f.name, o)
        for f in sorted((Path(o) / "stages").glob("*.settings.json")):
            if not (dest / "stages" / f.name).exists():
                shutil.copy2(f, dest / "stages" / f.name)
    values = {k: v for k, v in flatten(mans[0]["config"]).items()}
    values.update(out=str(dest), shard=None, infra_retries=0)
    cfg = load_config(DatagenConfig, None, values={k: v for k, v in values.items()
                                                   if k != "backend.extra"})
    st = dest / "stages"
    model = _stored_id(st, "solve", "@model") or _stored_id(st, "autoformalize", "@model")
    judge = _stored_id(st, "judge", "@judge")
    comps = Components(backend=_Replayed(model) if model else None,
                       judge_backend=_Replayed(judge) if judge and judge != model else None,
                       replay_only=True)
    return main(cfg, components=comps)


def _union(src: Path, dst: Path, where: str) -> None:
    with JobStore(src) as a, JobStore(dst) as b:
        for k in a.keys():
            rec = a.get(k)
            have = b.get(k)
            if have is None:
                b.add(k, {f: v for f, v in (rec or {}).items() if f != "key"})
            elif have != rec:
                raise MergeError(f"{src.name}: work item {k} is stored differently in {where} "
                                 "and an earlier shard (overlapping shards)")
