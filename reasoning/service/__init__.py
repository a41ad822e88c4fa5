"""The sandbox and the grader as an HTTP service (``verimath serve``) and its client.

* :mod:`reasoning.service.app`: the ASGI app (FastAPI on uvicorn) with SandboxFusion's
  ``POST /run_code``, our ``/v1/exec``, ``/v1/sessions``, ``/v1/grade``, ``/health`` and
  ``/metrics``; bearer-token auth, body-size limit (413), a concurrency bound (429).
* :mod:`reasoning.service.client`: :class:`~reasoning.service.client.RemoteSandbox` and
  :class:`~reasoning.service.client.RemoteGrader`, drop-in stand-ins for the local
  :class:`~reasoning.sandbox.Sandbox` and :class:`~reasoning.grading.Grader` that spread work
  over one or more servers; lost requests become ``SANDBOX_ERROR`` / ``ERROR``, never wrong.
* :mod:`reasoning.service.factory`: the config types with ``endpoints`` and the one factory
  every job builds its sandbox and grader with.

Nothing is imported here, so ``import reasoning.service`` stays cheap.
"""
