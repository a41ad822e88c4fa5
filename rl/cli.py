"""The shared body of ``verimath sft`` and ``verimath grpo`` (imported lazily by the commands)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from verimath.rl.common import TrainReport


def run_job(
    name: str, args: argparse.Namespace, flags: Mapping[str, str], cfg_cls: type,
    train: Callable[[Any], TrainReport], metric: str,
) -> int:
    """Build ``cfg_cls`` from ``--config``, flags and overrides; train; print a JSON summary.

    Args:
        name: subcommand name for messages.
        args: parsed arguments with ``config`` and ``overrides``.
        flags: argument attribute -> dotted config key.
        cfg_cls: the job's config dataclass.
        train: ``cfg -> TrainReport``.
        metric: the per-step log key to summarise ("loss" or "reward").

    Returns:
        0, or 2 on a config or data error (the message names the key, file or record).
    """
    from verimath.config import ConfigError, config_from_args
    from verimath.records import RecordError

    try:
        report = train(config_from_args(cfg_cls, args, dict(flags)))
    except (ConfigError, FileNotFoundError, RecordError, ValueError) as e:
        print(f"verimath {name}: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"final_dir": report.final_dir, "global_step": report.global_step,
                      "resumed_from": report.resumed_from,
                      f"{metric}_per_step": [h[metric] for h in report.log_history
                                             if metric in h],
                      "seconds": round(report.seconds, 1)}))
    return 0
