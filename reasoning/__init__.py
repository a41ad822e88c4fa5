"""Informal reasoning: the sandboxed Python interpreter, answer extraction and grading,
CoT / program-of-thought / tool-integrated rollouts, and evaluation metrics."""
