"""``verimath view``: a run folder (or two to compare) as one self-contained HTML report."""

from __future__ import annotations

import argparse

HELP = ("write a self-contained HTML report of an eval / prove / datagen / iterate folder, or "
        "the comparison of two eval (or prove) folders")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``RUN_DIR [RUN_DIR_B] [--out FILE.html]``."""
    p.add_argument("runs", nargs="+", metavar="RUN_DIR",
                   help="a run folder (the --out of eval, prove, datagen or iterate); a second "
                        "one compares the two (A then B: flips, paired difference)")
    p.add_argument("--out", help="HTML file to write (default RUN_DIR/report.html, or "
                   "RUN_DIR_B/compare.html for two)")
    p.add_argument("--compress", choices=["auto", "yes", "no"], default="auto",
                   help="embed the data gzip-compressed (auto: when it is large)")


def run(args: argparse.Namespace) -> int:
    """Write the report and print its path and size; 2 on a bad folder or argument."""
    import sys

    from verimath.view import build_report
    from verimath.view.load import RunFolderError

    if len(args.runs) > 2:
        print(f"verimath view: one run folder, or two to compare (got {len(args.runs)})",
              file=sys.stderr)
        return 2
    compress = {"auto": None, "yes": True, "no": False}[args.compress]
    try:
        rep = build_report(args.runs, args.out, compress=compress)
    except (RunFolderError, ValueError, FileNotFoundError) as e:
        print(f"verimath view: {e}", file=sys.stderr)
        return 2
    print(f"report ({rep.kind}, {rep.size_bytes / 1e6:.2f} MB"
          f"{', compressed' if rep.compressed else ''}, {rep.seconds:.1f} s): {rep.path}")
    return 0
