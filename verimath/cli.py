"""The ``verimath`` command line.

Each subcommand lives in ``verimath/commands/<name>.py`` and exposes ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Those modules import only ``argparse`` at
module level; heavy libraries (torch, transformers, sympy) are imported inside ``run`` so that
``verimath --help`` returns in well under a second.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand -> module under ``verimath.commands``; order is the order shown in ``--help``.
COMMANDS: dict[str, str] = {
    "eval": "eval_cmd",
    "exec": "exec_cmd",
    "grade": "grade_cmd",
    "prove": "prove_cmd",
    "check": "check_cmd",
    "doctor": "doctor_cmd",
    "datagen": "datagen_cmd",
    "merge": "merge_cmd",
    "sft": "sft_cmd",
    "grpo": "grpo_cmd",
    "dpo": "dpo_cmd",
    "iterate": "iterate_cmd",
    "serve": "serve_cmd",
    "view": "view_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand whose module is present."""
    from verimath import __version__

    parser = argparse.ArgumentParser(
        prog="verimath",
        description="Verified math data: sandboxed PoT/TIR, graders, Lean proof audit, SFT/GRPO.",
    )
    parser.add_argument("--version", action="version", version=f"verimath {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(f"verimath.commands.{modname}")
        except ModuleNotFoundError as e:
            if e.name == f"verimath.commands.{modname}":
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``verimath`` console script. Returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return int(args._run(args) or 0)
