"""verimath: verified math training data and fine-tuning on verifier rewards.

Nothing is imported eagerly here so that ``verimath --help`` stays fast.
"""

__version__ = "0.1.0"
