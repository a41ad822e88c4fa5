"""The Lean verdict cache is shared safely by concurrent jobs (one locked JobStore file)."""

from verimath.prover.cache import VerdictCache
from verimath.prover.types import LeanVersion, ProofTask
from verimath.records import Verdict, VerdictStatus

LEAN = LeanVersion("leanprover/lean4:v4.9.0", "abc123")
TASK = ProofTask("theorem t : 1 + 1 = 2", "", "  norm_num\n", "t")


def test_two_caches_on_one_file_share_verdicts(tmp_path):
    a = VerdictCache(tmp_path / "v.jsonl")
    b = VerdictCache(tmp_path / "v.jsonl")
    assert b.get(TASK, LEAN) is None
    assert a.put(TASK, LEAN, Verdict(VerdictStatus.CORRECT, "ok"))
    hit = b.get(TASK, LEAN)  # the other job sees it without reopening
    assert hit is not None and hit.correct and hit.detail["cached"] is True
    assert not b.put(TASK, LEAN, Verdict(VerdictStatus.CORRECT, "ok"))  # already there
    assert not a.put(TASK, LEAN, Verdict(VerdictStatus.TIMEOUT, "slow"))  # never cached
    a.close()
    b.close()
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 1
