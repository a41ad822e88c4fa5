"""Informal reasoning.

The sandboxed Python interpreter, answer extraction and grading, CoT / program-of-thought /
tool-integrated rollouts, and evaluation metrics.
"""
