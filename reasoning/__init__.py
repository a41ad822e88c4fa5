"""Informal reasoning.

The sandboxed Python interpreter, answer extraction and grading, CoT / program-of-thought /
tool-integrated rollouts, and evaluation metrics.

The "could not judge" rule (one rule for the whole of verimath)
----------------------------------------------------------------
A verdict is either a *judgment* about the model's output or *could not judge*:

* judgments: grader ``CORRECT`` / ``WRONG`` / ``NO_ANSWER``; a program's own ``runtime_error``,
  ``timeout``, ``memory``...; a Lean proof the audit accepts or rejects; a search that finds a
  proof or spends its budget without any infrastructure failure;
* could not judge: an infrastructure failure, carried as a value: sandbox ``SANDBOX_ERROR`` (or
  a session whose interpreter was lost and restarted), grader ``TIMEOUT`` / ``ERROR`` /
  ``BAD_GOLD`` (a grader worker killed, crashed, out of memory, or every math-verify comparison
  raising), Lean ``TIMEOUT`` / ``CRASHED`` / ``ProverInfraError``, a dead server, a verifier
  call still running at its deadline.

What could not be judged is **counted and shown** (per-status counts in reports and
manifests, ``rewards/<name>/infra_failure_rate`` in GRPO, ``grader_unjudged`` /
``grader_timeout`` / ``sandbox_error`` reasons in datagen) and **never reaches a score, a
vote, a reward or a search verdict**: metrics skip it; a self-consistency vote does not count
it and, when an unjudged comparison could change the majority, gives no verdict
(``verimath.datagen.solve``); a best-first search that ran into Lean timeouts/crashes and found no
proof is ``INFRA_ERROR``, not "no proof" (``verimath.prover.search``); a reward function returns
None for it (``verimath.rl.rewards``), and GRPO stops with a clear error when one reward judged no
sample for ``grpo.max_infra_failure_steps`` consecutive steps.

A code bug is not an infrastructure failure: it raises. Reward functions map only the known
infrastructure exceptions (``SandboxError``, ``GraderUnavailable``, ``ProverInfraError``) to
None and re-raise everything else (a wrong dataset column, a ``KeyError`` in our code).
"""
