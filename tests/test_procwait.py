"""Waiting for a child process: its status, the time-out, and no polling sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from prtvoice import procwait


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_the_exit_status_without_polling_sleeps(monkeypatch):
    # Popen.wait(timeout) sleeps between polls (up to 50 ms late); this must not.
    process = _child("import sys, time; time.sleep(0.2); sys.exit(3)")

    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds} s while waiting")

    if hasattr(os, "pidfd_open"):
        monkeypatch.setattr(time, "sleep", no_sleep)
    assert procwait.wait(process, timeout=30) == 3
    assert process.returncode == 3  # reaped


def test_a_process_that_does_not_end_in_time_raises_and_lives_on():
    process = _child("import time; time.sleep(30)")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            procwait.wait(process, timeout=0.2)
        assert process.poll() is None
    finally:
        process.kill()
        assert procwait.wait(process, timeout=10) != 0


def test_an_ended_or_reaped_process_and_no_pidfd(monkeypatch):
    process = _child("pass")
    process.wait()
    assert procwait.wait(process, timeout=1) == 0  # reaped already
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # another platform
    other = _child("import sys; sys.exit(4)")
    assert procwait.wait(other, timeout=30) == 4
