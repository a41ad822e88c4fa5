"""The verified synthetic-data loop (load, dedup/decontaminate, solve, formalize, prove, export)."""
