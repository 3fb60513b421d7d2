"""``make demo`` works: demo.py runs in a fresh copy of examples/ and both orders ship."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_demo_runs_both_orders_in_a_copy_of_examples(tmp_path: Path) -> None:
    """A copy, so the test neither reads nor leaves state in the real examples/.turnout/."""
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy, ignore=shutil.ignore_patterns(".turnout", "__pycache__"))

    done = subprocess.run([sys.executable, "demo.py"], cwd=copy, capture_output=True, text=True, timeout=120)

    out = done.stdout
    assert done.returncode == 0, f"demo.py exited {done.returncode}\n{out}\n{done.stderr}"
    assert done.stderr == "", done.stderr
    assert "== 1. components/" in out and "== 2. no YAML" in out
    assert len(re.findall(r"order-100[12]-\w+ COMPLETED", out)) == 2
    assert out.count("attempt 1 failed") == 2 and out.count("attempt 2 succeeded") == 2
    assert '"approved_by": "alice"' in out
    assert "approved by bob" in out
    assert "TRK-TEAPOT-1, TRK-CUP-4, TRK-TRAY-1" in out
    # The history table: each step once, with its name and task id.
    for line in [
        r"WorkflowStarted\s+process_order",
        r"TaskCompleted\s+charge\s+#1",
        r"TimerFired\s+#3",
        r"EventRaised\s+approved",
        r"TaskCompleted\s+ship\s+#7",
        r"WorkflowCompleted",
    ]:
        assert len(re.findall(rf"^\s+\d+ ms  {line}$", out, re.MULTILINE)) == 1, line
    # The declarative workflow: 1.2 + 4 x 0.25 + 0.8 = 3 kg abroad at 11 a kilo.
    assert 'shipping-quote@1.0.0 COMPLETED: {"zone": "international", "kilos": 3, "price": 33}' in out
    assert out.rstrip().endswith("both orders shipped")
    # The component YAML put the orders engine on its own file; the no-YAML run on the default one.
    assert (copy / ".turnout" / "orders.db").is_file()
    assert (copy / ".turnout" / "dapr.db").is_file()
