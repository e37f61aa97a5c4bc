"""Work in a forked helper process: results, failures, stray processes, the voice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from prtvoice import forked
from prtvoice.errors import VoiceError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork: Linux")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_both_runs_the_second_part_in_another_process():
    me = os.getpid()
    here, there = forked.both(lambda: ("here", os.getpid()), lambda: ("there", os.getpid()))
    assert here == ("here", me)
    assert there[0] == "there" and there[1] != me
    assert gone(there[1])  # waited for: no zombie, no stray helper


@pytest.mark.parametrize("how", ["raises", "killed", "unpicklable"])
def test_a_failing_helper_leaves_its_work_to_this_process(how):
    me = os.getpid()

    def there():
        if os.getpid() != me:  # only in the helper
            if how == "raises":
                raise RuntimeError("boom")
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            return lambda: None  # pickle refuses a lambda
        return os.getpid()

    assert forked.both(lambda: 1, there) == (1, me)


def test_without_fork_both_parts_run_here_in_order(monkeypatch):
    order = []
    me = os.getpid()
    assert forked.both(lambda: order.append("a") or os.getpid(),
                       lambda: order.append("b") or os.getpid(), fork=False) == (me, me)  # fmt: skip
    assert order == ["a", "b"]
    monkeypatch.setenv("PRTVOICE_ENCODERS", "1")  # an export kept on one core
    assert not forked.available()
    assert forked.both(lambda: 1, os.getpid) == (1, me)


def test_an_error_here_stops_the_helper_at_once(tmp_path):
    started = tmp_path / "pid"

    def there():
        started.write_text(str(os.getpid()))
        signal.pause()  # would never end by itself

    def here():
        while not started.exists() or not started.read_text():
            pass
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        forked.both(here, there)
    assert gone(int(started.read_text()))


def test_a_forked_copy_never_drives_the_parents_speech_worker(tmp_path):
    # A helper shares the speech worker's pipes: a request from it would take the
    # replies meant for this process, and its clean-up could kill the worker. It
    # must leave that worker alone (here it starts one of its own); this process's
    # voice goes on with the same worker.
    from prtvoice.tts.pyttsx3_engine import Pyttsx3Engine

    engine = Pyttsx3Engine()
    try:
        voice = engine.voices()[0].id
        engine.synthesize("First.", voice_id=voice, rate=1.0, volume=1.0,
                          out=tmp_path / "first.wav")  # fmt: skip
        (worker,) = engine._idle
        pid = worker.process.pid

        def there():
            try:
                worker.send({"op": "info"}, what="listing voices")
            except VoiceError as exc:
                refused = "another process" in str(exc)
            worker.kill()  # what a failing request's clean-up does: a no-op here
            engine.synthesize("From the helper.", voice_id=voice, rate=1.0, volume=1.0,
                              out=tmp_path / "helper.wav")  # fmt: skip
            return refused

        _, refused = forked.both(lambda: None, there)
        assert refused
        assert (tmp_path / "helper.wav").stat().st_size > 1000  # by a worker of its own
        engine.synthesize("Still here.", voice_id=voice, rate=1.0, volume=1.0,
                          out=tmp_path / "parent.wav")  # fmt: skip
        assert (tmp_path / "parent.wav").stat().st_size > 1000
        assert engine._idle == [worker] and worker.process.pid == pid and worker.alive
    finally:
        engine.close()


def test_a_signal_while_forking_is_not_lost(tmp_path):
    # At a fork Python runs libraries' at-fork callbacks (logging's, for one); an
    # exception a signal handler raises inside one is printed and dropped. Here a
    # SIGTERM lands in such a callback, in a process of its own (the callback cannot
    # be unregistered): it must still stop the work, and the helper with it.
    code = f"""
import os, signal, sys, time
from pathlib import Path
from prtvoice import forked

class Stop(Exception):
    pass

def handler(signum, frame):
    raise Stop()

signal.signal(signal.SIGTERM, handler)
armed = [True]

def during_fork():
    if armed[0]:
        armed[0] = False
        os.kill(os.getpid(), signal.SIGTERM)

os.register_at_fork(after_in_parent=during_fork)

def there():
    Path({str(tmp_path / "helper")!r}).write_text(str(os.getpid()))
    time.sleep(30)

try:
    forked.both(lambda: time.sleep(30), there)
except Stop:
    print("stopped")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.stdout.strip() == "stopped", done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    helper = tmp_path / "helper"
    if helper.exists() and helper.read_text():  # it may have been stopped before it wrote
        assert gone(int(helper.read_text()))
