"""``verimath merge``: join the output folders of a sharded eval / prove run into one."""

from __future__ import annotations

import argparse

HELP = ("merge shard folders (--shard I/N runs) of one eval, prove or datagen job into the "
        "files of an unsharded run")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``verimath merge OUT_0 ... OUT_N-1 --out OUT``."""
    p.add_argument("shards", nargs="+", metavar="SHARD_OUT", help="the shard output folders")
    p.add_argument("--out", required=True, help="the merged folder (new or empty)")


def run(args: argparse.Namespace) -> int:
    """Check and merge the shards, then write the job's summary files; 2 if they do not fit."""
    import sys
    from pathlib import Path

    from verimath.jobs import MergeError, check_shard_set, merge_shards

    try:
        if check_shard_set(args.shards)[0].get("job") == "datagen":
            from verimath.datagen.merge import merge_runs

            report = merge_runs(args.shards, args.out)
            print(f"merged {len(args.shards)} datagen shards into {args.out}/ "
                  f"({report.counts.get('verified', 0)} verified records)", file=sys.stderr)
            return 0
        manifest, records = merge_shards(args.shards, args.out)
    except (MergeError, ValueError, RuntimeError) as e:
        print(f"verimath merge: {e}", file=sys.stderr)
        return 2
    job = manifest.get("job")
    if job == "eval":
        from verimath.reasoning.evaluation import finalize
    elif job == "prove":
        from verimath.prover.evaluation import finalize
    else:
        print(f"verimath merge: cannot summarize a {job!r} job", file=sys.stderr)
        return 2
    finalize(Path(args.out), records, manifest)
    print(f"merged {len(args.shards)} shards ({len(records)} problems) into {args.out}/",
          file=sys.stderr)
    return 0
