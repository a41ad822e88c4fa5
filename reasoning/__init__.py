"""Informal reasoning.

The sandboxed Python interpreter, answer extraction and grading, CoT / program-of-thought /
tool-integrated rollouts, and evaluation metrics.

The "could not judge" rule (one rule for the whole of verimath)
----------------------------------------------------------------
A verdict is either a *judgment* about the model's output or *could not judge*:

* judgments: grader ``CORRECT`` / ``WRONG`` / ``NO_ANSWER`` / ``UNVERIFIABLE``; a program's
  own ``runtime_error``, ``timeout``, ``memory``, ``output_limit``, ``signaled``...; a Lean
  proof the audit accepts or rejects, or that runs Lean out of its time limit; a tactic that
  runs Lean out of time (a failed expansion); a search that finds a proof or spends its budget
  without any infrastructure failure;
* could not judge: an infrastructure failure, carried as a value: sandbox ``SANDBOX_ERROR`` (or
  a session whose interpreter was lost and restarted), grader ``TIMEOUT`` / ``ERROR`` /
  ``BAD_GOLD`` (a grader worker killed from outside on every try, a machine too loaded to
  re-check, a gold answer that cannot be evaluated), a crashed or lost Lean REPL
  (``CRASHED``, ``ProverInfraError``, "Unknown environment", a server error), a dead server, a
  verifier call still running past its own per-item limit.

Caused by the input, or by the infrastructure
---------------------------------------------
What the model's own output causes is a judged failure, never "could not judge": a policy must
not be paid (by leaving its GRPO group) for breaking a verifier. A grader comparison that times
out, runs out of memory, crashes math-verify's parser or makes every comparison raise is
re-checked once on a fresh worker with the same limits, the time limit then measured in the
worker's CPU time, so machine load never becomes a verdict. If it fails the same way again and
the gold alone evaluates (against itself, and against a plain ``0``), the answer caused it:
``UNVERIFIABLE`` ("the answer could not be evaluated within the limits"), counted as wrong in
every metric, vote and reward (0.0) and shown with its own count (``n_unverifiable``). If the
gold fails, ``BAD_GOLD``. What does not reproduce stays could-not-judge. A program's own
timeout, memory or crash is a judged 0.0 (it already is in the sandbox); a proof that runs Lean
out of time is a failed proof (``UNVERIFIABLE``, reward 0.0). Each verifier call has its own
deadline derived from its component's limits; a batch deadline is only a safety net sized from
the work, never what decides a sample.

One predicate decides judged-or-not for every result type: :func:`verimath.records.judged`
(a grader or audit ``Verdict``, a sandbox ``ExecResult``, a search result), and every consumer
calls it (metrics, votes, rewards, search, datagen stages, eval and prove records).

What could not be judged is **counted and shown** (per-status counts in reports and
manifests, ``rewards/<name>/infra_failure_rate`` in GRPO, ``grader_unjudged`` /
``grader_timeout`` / ``sandbox_error`` reasons in datagen) and **never reaches a score, a
vote, a reward or a search verdict**: metrics skip it; a self-consistency vote does not count
it and, when an unjudged comparison could change the majority, gives no verdict
(``verimath.datagen.solve``); a best-first search that ran into Lean crashes and found no
proof is ``INFRA_ERROR``, not "no proof" (``verimath.prover.search``); a reward function returns
None for it (``verimath.rl.rewards``), and GRPO stops with a clear error when one reward judged no
sample for ``grpo.max_infra_failure_steps`` consecutive steps.

A code bug is not an infrastructure failure: it raises. Reward functions map only the known
infrastructure exceptions (``SandboxError``, ``GraderUnavailable``, ``ProverInfraError``) to
None and re-raise everything else (a wrong dataset column, a ``KeyError`` in our code).
"""
