"""The default engine: pyttsx3's eSpeak NG, spoken in worker processes that can be killed.

eSpeak is not thread-safe and a synthesis can hang, so every clip is made in
a worker process (prtvoice/tts/worker.py) with a time-out; a worker that
does not answer in time is killed and the clip fails with a VoiceError. One
worker serves one caller at a time: N threads calling `synthesize` at once
get N workers, started on demand and kept for reuse until `close()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from prtvoice import procwait
from prtvoice.errors import VoiceError
from prtvoice.tts.engine import CALM_WPM, VoiceInfo, words_per_minute
from prtvoice.tts.spawn import WORKER_ARGV, Spawned, spawn

START_TIMEOUT = 30.0


class Worker:
    """One worker process and its line protocol."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        wait: bool = True,
        spawned: Spawned | None = None,
    ) -> None:
        """Start the process (or take over `spawned`, started with the same `argv`);
        with wait=False return at once and check that it came up (its "ready" line)
        only on the first `ask`, so its start overlaps other work."""
        if spawned is None:
            try:
                spawned = spawn(argv)
            except OSError as exc:
                raise VoiceError(f"could not start the speech worker: {exc}") from exc
        self.process, self._stderr = spawned.process, spawned.stderr
        self._buffer = b""
        # A forked copy of this process (prtvoice.forked) shares the worker's pipes:
        # a request from it would take replies meant for this one. It gets an error.
        self._owner = os.getpid()
        self._start_timeout = timeout
        self._ready = False
        if wait:
            self._wait_ready()

    def _wait_ready(self) -> None:
        if self._ready:
            return
        ready = self._read(self._start_timeout, "start")
        if not ready.get("ok"):
            self.kill()
            raise VoiceError(f"the speech engine did not start: {ready.get('error')}")
        self._ready = True

    def ask(self, request: dict, *, timeout: float, what: str) -> dict:
        """Send one request and return the reply; kill the worker on time-out or death."""
        self.send(request, what=what)
        return self.receive(timeout=timeout, what=what)

    def send(self, request: dict, *, what: str) -> None:
        """Queue one request (the worker reads it once started); `receive` its reply."""
        self._check_owner(what)
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except OSError:
            tail = self._stderr_tail()
            self.kill()
            raise VoiceError(f"the speech worker died before {what}{tail}") from None

    def _check_owner(self, what: str) -> None:
        if os.getpid() != self._owner:
            raise VoiceError(f"the speech worker belongs to another process ({what})")

    def receive(self, *, timeout: float, what: str) -> dict:
        """The next reply (after checking, once, that the worker started)."""
        self._check_owner(what)
        self._wait_ready()
        return self._read(timeout, what)

    def _read(self, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise VoiceError(f"the speech engine hung ({what}: no answer in {timeout:g} s)")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait()
                    tail = self._stderr_tail()
                    self.kill()
                    raise VoiceError(f"the speech worker died during {what}{tail}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError:
            self.kill()
            raise VoiceError(f"the speech worker answered nonsense: {line[:200]!r}") from None

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read()[-2000:].decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {text}" if text else ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if os.getpid() != self._owner:
            return  # a forked copy's failure is not the worker's: it stays the parent's
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._stderr.close()

    def close(self) -> None:
        """Ask the worker to leave (end of input), kill it if it lingers."""
        if os.getpid() != self._owner:
            return
        try:
            self.process.stdin.close()
            procwait.wait(self.process, timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class Pyttsx3Engine:
    """pyttsx3 + eSpeak NG. Voices are eSpeak identifiers ("gmw/en-us"), optionally with
    a variant ("gmw/en-us+f3"). Rate 1.0 is `base_wpm` words per minute."""

    name = "pyttsx3"

    def __init__(
        self,
        *,
        base_wpm: int = CALM_WPM,
        timeout: float = 30.0,
        worker_argv: Sequence[str] = WORKER_ARGV,
    ) -> None:
        self.base_wpm = base_wpm
        self.timeout = timeout
        self._argv = tuple(worker_argv)
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self._info: dict | None = None
        self._closed = False
        self._warming: threading.Event | None = None  # set once the warm-up worker is ready
        self._warm_worker: Worker | None = None

    # -- workers

    def _acquire(self) -> Worker:
        warming = self._warming
        if warming is not None:
            warming.wait()  # the warm-up worker is moments from ready: cheaper than a new one
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                worker.kill()
        return Worker(self._argv, timeout=max(self.timeout, START_TIMEOUT))

    def warm(self, *, spawned: Spawned | None = None) -> None:
        """Start one worker now (or take over `spawned`, one started earlier with
        this engine's command), and have it list its voices, without waiting for
        either.

        A worker takes ~0.2 s to start (Python, eSpeak NG's data) and the voice
        list ~0.05 s more: a caller that knows it will speak soon calls this
        first, so both overlap its own start-up; the first request then takes
        that worker. Does nothing when a worker is already idle or starting
        (`spawned` is then stopped). A failure here is dropped: the first real
        request starts its own worker and reports what goes wrong, exactly as
        without warming.
        """
        with self._lock:
            busy = self._idle or self._closed or self._warming is not None
            if not busy:
                self._warming = threading.Event()
        if spawned is not None and (busy or spawned.argv != self._argv):
            spawned.discard()  # not wanted, or started for another worker command
            spawned = None
        if busy:
            return
        timeout = max(self.timeout, START_TIMEOUT)
        try:
            worker = Worker(self._argv, timeout=timeout, wait=False, spawned=spawned)
            worker.send({"op": "info"}, what="listing voices")
        except VoiceError:
            self._warming.set()
            return
        self._warm_worker = worker
        threading.Thread(
            target=self._finish_warming, args=(worker, timeout), name="prtvoice-tts-warm",
            daemon=True,
        ).start()  # fmt: skip

    def _finish_warming(self, worker: Worker, timeout: float) -> None:
        try:
            reply = worker.receive(timeout=timeout, what="listing voices")
            if reply.get("ok") and self._info is None:
                self._info = reply
            self._release(worker)
        except BaseException:  # the first real request reports it
            worker.kill()
        finally:
            self._warm_worker = None
            assert self._warming is not None
            self._warming.set()

    def _release(self, worker: Worker) -> None:
        with self._lock:
            if worker.alive and not self._closed:
                self._idle.append(worker)
                return
        worker.close()

    def _ask(self, request: dict, *, timeout: float, what: str) -> dict:
        worker = self._acquire()
        try:
            reply = worker.ask(request, timeout=timeout, what=what)
        except BaseException:
            worker.kill()
            raise
        self._release(worker)
        return reply

    def close(self) -> None:
        """Stop every idle worker (busy ones stop when their clip is done)."""
        warming = self._warm_worker
        if warming is not None:
            warming.kill()  # still starting: its thread sees it die and lets go
        if self._warming is not None:
            self._warming.wait()
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()

    # -- the Engine interface

    def info(self) -> dict:
        """Library, versions, data path, voices and variants, as the worker reports them."""
        if self._info is None and self._warming is not None:
            self._warming.wait()  # the warm-up worker is listing them already
        if self._info is None:
            reply = self._ask(
                {"op": "info"}, timeout=max(self.timeout, START_TIMEOUT), what="listing voices"
            )
            if not reply.get("ok"):
                raise VoiceError(f"the speech engine failed to list voices: {reply.get('error')}")
            self._info = reply
        return self._info

    @property
    def version(self) -> str:
        # From the library loaded here (cheap, no worker), so a full cache hit starts none;
        # or from the warm-up worker's answer when it is in already (the same library,
        # loaded the same way).
        info = self._info
        if info is not None and info.get("pyttsx3", "unknown") != "unknown" and info.get("espeak"):
            return f"pyttsx3-{info['pyttsx3']}/espeak-ng-{info['espeak']}"
        from prtvoice.tts.espeak import load_espeak, pyttsx3_version

        library = load_espeak()
        return f"pyttsx3-{pyttsx3_version()}/espeak-ng-{library.version}"

    def describe(self) -> str:
        """One line for `prtvoice doctor`: which eSpeak NG speaks."""
        from prtvoice.tts.espeak import load_espeak

        return f"{self.version}: {load_espeak().describe()}"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(v["id"], v["name"], tuple(v["languages"])) for v in self.info()["voices"]]

    def variants(self) -> list[str]:
        """eSpeak NG voice variants ("f3", "m3", "klatt", ...) to append as "+name"."""
        return list(self.info()["variants"])

    def synthesize(
        self, text: str, *, voice_id: str, rate: float, volume: float, out: Path
    ) -> None:
        if not text.strip():
            raise VoiceError("nothing to say: the text is empty")
        request = {
            "voice": voice_id,
            "wpm": words_per_minute(rate, base=self.base_wpm),
            "volume": round(max(0.0, min(1.0, volume)) * 100),
            "text": text,
            "out": str(Path(out).resolve()),
        }
        # Generous: eSpeak speaks hundreds of times faster than real time.
        timeout = self.timeout + len(text) / 100
        reply = self._ask(request, timeout=timeout, what=f"speaking {_short(text)!r}")
        if not reply.get("ok"):
            raise VoiceError(f"the speech engine failed on {_short(text)!r}: {reply.get('error')}")
        if not Path(out).is_file() or Path(out).stat().st_size <= 44:
            raise VoiceError(f"the speech engine wrote no audio for {_short(text)!r}")


def _short(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
