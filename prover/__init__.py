"""Formal proving: Lean backends (LeanDojo, Lean REPL), proof audit, proof search, formal eval."""
