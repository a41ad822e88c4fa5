"""Host-side pieces of a running sandbox: the server handle and the uid / fallback cleanup."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from verimath.reasoning.sandbox import isolation
from verimath.reasoning.sandbox.child import FrameReader, proc_status

log = logging.getLogger(__name__)

__all__ = ["FALLBACK_PREFIX", "_Server", "_discard_launch", "kill_uid_range",
           "reap_stale_fallbacks"]


class _Server:
    """One running sandbox (bwrap or fallback) with its heavy and light fork servers."""

    def __init__(self, proc: subprocess.Popen[bytes], socks: dict[str, socket.socket],
                 mode: str, uid_base: int, tmpdir: str | None) -> None:
        self.proc, self.socks, self.mode = proc, socks, mode
        self.uid_base, self.tmpdir = uid_base, tmpdir
        self.readers = {tier: FrameReader() for tier in socks}
        self.send_locks = {tier: threading.Lock() for tier in socks}
        self.stderr = bytearray()
        self.hello: dict[str, dict[str, Any]] = {}
        self.pending: list[Any] = []
        self.isolation = ""
        self.alive = True

    def stderr_tail(self) -> str:
        return self.stderr[-2000:].decode("utf-8", "replace").strip()

    def kill(self) -> None:
        """Kill the servers and, with them, every execution (PID namespace or uid sweep)."""
        self.alive = False
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.error("sandbox: fork server %d did not die", self.proc.pid)
        for f in [*self.socks.values(), self.proc.stderr]:
            try:
                f.close()  # type: ignore[union-attr]
            except OSError:
                pass
        if self.mode == "rlimits":
            kill_uid_range(self.uid_base, isolation.UID_SLOTS)
            if self.tmpdir:
                shutil.rmtree(self.tmpdir, ignore_errors=True)


def kill_uid_range(base: int, count: int, rounds: int = 50) -> int:
    """SIGKILL every host process whose real uid is in [base, base + count); returns how many."""
    killed = 0
    for _ in range(rounds):
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_status(int(name))
                if st is not None and base <= st[0] < base + count and st[1] not in "ZX":
                    found.append(int(name))
        if not found:
            break
        for pid in found:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                st = proc_status(pid)  # re-check after pinning the pid: no recycling race
                if st is not None and base <= st[0] < base + count:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                    killed += 1
            except OSError:
                pass
            finally:
                os.close(fd)
        time.sleep(0.01)
    return killed


FALLBACK_PREFIX = "verimath-sandbox-"


def _discard_launch(pairs: dict[str, tuple[socket.socket, socket.socket]],
                    tmpdir: str | None) -> None:
    """Undo a launch that failed before the server process existed."""
    for a, b in pairs.values():
        a.close()
        b.close()
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


def reap_stale_fallbacks() -> None:
    """Clean up after fallback sandboxes whose host process died without ``close()``.

    Their working dirs are named ``verimath-sandbox-<host pid>-<uid base>-*``: when that pid
    is gone, kill whatever still runs under the uid block and remove the dir.
    """
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{FALLBACK_PREFIX}*-*-*"):
        try:
            pid, base = (int(x) for x in d.name[len(FALLBACK_PREFIX):].split("-")[:2])
            if d.lstat().st_uid != os.geteuid() or Path(f"/proc/{pid}").exists():
                continue
        except (ValueError, OSError):
            continue
        kill_uid_range(base, isolation.UID_SLOTS)
        shutil.rmtree(d, ignore_errors=True)


