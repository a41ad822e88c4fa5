"""Thin faces of verimath's verifiers for other training stacks (:mod:`.verl`).

TRL needs no adapter: :mod:`verimath.rewards` has TRL's reward signature.
"""
