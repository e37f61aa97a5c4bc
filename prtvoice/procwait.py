"""Waiting for a child process to end, woken the moment it does.

`Popen.wait(timeout=...)` polls, sleeping between polls for up to 50 ms, so it
notices an exit up to 50 ms late. An export ends by waiting for its two ffmpegs
and its speech worker, one after the other: ~0.1 s measured in those sleeps. A
pidfd (Linux 5.3 and later) becomes readable when the process ends, so `poll`
on it wakes at once; elsewhere this is `Popen.wait` as before.
"""

from __future__ import annotations

import os
import select
import subprocess


def wait(process: subprocess.Popen, timeout: float) -> int:
    """`process.wait(timeout)`: its exit status, or subprocess.TimeoutExpired."""
    if process.returncode is not None:
        return process.returncode
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or reaped already
        return process.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, round(timeout * 1000))):
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(fd)
    return process.wait()  # it has ended: this reaps it without waiting
