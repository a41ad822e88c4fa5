"""The sandbox and the grader as an HTTP service (``verimath serve``) and its client.

* :mod:`verimath.reasoning.service.app`: the ASGI app (FastAPI on uvicorn) with SandboxFusion's
  ``POST /run_code``, our ``/v1/exec``, ``/v1/sessions``, ``/v1/grade``, ``/health`` and
  ``/metrics``; bearer-token auth, body-size limit (413), a concurrency bound (429).
* :mod:`verimath.reasoning.service.client`:
  :class:`~verimath.reasoning.service.client.RemoteSandbox` and
  :class:`~verimath.reasoning.service.client.RemoteGrader`, drop-in stand-ins for the local
  :class:`~verimath.reasoning.sandbox.Sandbox` and :class:`~verimath.reasoning.grading.Grader` that
  spread work over one or more servers; lost requests become ``SANDBOX_ERROR`` / ``ERROR``, never
  wrong.
* :mod:`verimath.reasoning.service.factory`: the config types with ``endpoints`` and the one factory
  every job builds its sandbox and grader with.

Nothing is imported here, so ``import verimath.reasoning.service`` stays cheap.
"""
