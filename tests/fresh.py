"""Run Python code in a fresh interpreter: for what a new process imports, loads
first, or races on (module caches in this test process would hide all three)."""

from __future__ import annotations

import subprocess
import sys


def run_fresh(code: str, *, timeout: float = 120.0) -> str:
    """Run `code` with this interpreter in a new process; its stdout. Fails the
    test, showing stderr, when the code fails (an assert in it, say)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
