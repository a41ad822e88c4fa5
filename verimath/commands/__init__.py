"""Subcommands of the ``verimath`` CLI (see :mod:`verimath.cli`)."""
