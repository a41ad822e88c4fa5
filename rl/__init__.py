"""SFT and GRPO on verifier rewards, built on TRL."""
