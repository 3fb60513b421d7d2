"""A workflow, and a script that runs it in a fresh interpreter: for what a process does from its start.

What ``import turnout`` pulls in, or a tracer provider set once the engine
runs, can only be seen in a process of its own. The script imports this
module for its workflow. A top-level module with a name of its own, as
``child_process``: the test folders each have a conftest module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import turnout

wf = turnout.Workflows()


@wf.activity
def double(ctx: turnout.ActivityContext, x: int) -> int:
    return 2 * x


@wf.workflow
def twice(ctx: turnout.WorkflowContext, x: int) -> Any:
    return (yield ctx.call_activity(double, input=x))


def run_script(folder: Path, body: str) -> str:
    """Run ``body`` as a script in a new interpreter, in ``folder``, this module importable; its output."""
    script = folder / "script.py"
    script.write_text(body)
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
