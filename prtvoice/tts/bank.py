"""The voice bank: every spoken clip of a session, exact in length, cached on disk.

The planner asks `frames()` (a clip's exact length), the renderer `clip()`
(its samples); both synthesize on a miss. `prefetch()` makes every missing
clip of a session first, in parallel; `prefetch_background()` does it while
the player already plays. A clip being made is never made twice: a caller
that needs it waits for it, or takes it over if no worker has started it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from prtvoice.atomic import replace_small_file
from prtvoice.errors import VoiceError
from prtvoice.names import DEFAULT_LANGUAGE
from prtvoice.script import VoiceSettings
from prtvoice.tts.cache import ClipCache, clip_key
from prtvoice.tts.clip import read_engine_wav, shape_clip
from prtvoice.tts.engine import Engine, VoiceInfo
from prtvoice.tts.voices import default_voice, find_voice

Request = tuple[str, VoiceSettings, str]
# Clips kept in memory (LRU). Small on purpose: an export streams through a
# session's clips in order, three times, so a bigger cache never hits there
# (measured: 64 MB raised a 20-minute export's peak RSS from 125 to 193 MB);
# what repeats (cue words, a refrain) stays, and the disk cache is fast.
MEMORY_BYTES = 8 * 1024 * 1024


class _Job:
    """One clip to make. state: queued -> running -> done (or cancelled)."""

    def __init__(self, key: str, text: str, voice_id: str, voice: VoiceSettings) -> None:
        self.key, self.text, self.voice_id, self.voice = key, text, voice_id, voice
        self.state = "queued"
        self.finished = threading.Event()
        self.frames: int | None = None
        self.error: BaseException | None = None


class Prefetch:
    """A background prefetch: `done()`, `wait()` (raises the first failure), `cancel()`."""

    def __init__(self, bank: VoiceBank, jobs: list[_Job], workers: int) -> None:
        self._bank = bank
        self._jobs = jobs
        self._queue = deque(jobs)
        self._cancelled = False
        self._threads = [
            threading.Thread(target=self._work, name=f"prtvoice-tts-{i}", daemon=True)
            for i in range(min(workers, len(jobs)))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while not self._cancelled:
            try:
                job = self._queue.popleft()
            except IndexError:
                return
            if self._bank._claim(job):
                self._bank._run(job)

    def done(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every clip is made; raise the first clip's error, if any."""
        for thread in self._threads:
            thread.join(timeout)
        for job in self._jobs:
            if job.state == "done" and job.error is not None:
                raise job.error

    def cancel(self) -> None:
        """Start no further clips; the ones being made finish."""
        self._cancelled = True
        while True:
            try:
                job = self._queue.popleft()
            except IndexError:
                break
            self._bank._drop(job)


class VoiceBank:
    """Clips for (text, voice, language) at `sample_rate`, float32 (frames, 1)."""

    def __init__(
        self,
        *,
        engine: Engine,
        cache_dir: Path,
        sample_rate: int,
        jobs: int = 2,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.engine = engine
        self.sample_rate = sample_rate
        self.jobs = max(1, jobs)
        self.cache = ClipCache(Path(cache_dir), sample_rate=sample_rate)
        self._memory_limit = memory_bytes
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_used = 0
        self._frames: dict[str, int] = {}
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.RLock()
        self._version: str | None = None
        self._voices: list[VoiceInfo] | None = None
        self._variants: list[str] = []
        self._resolved: dict[tuple[str | None, str], str] = {}
        self._prefetches: list[Prefetch] = []
        self._scratch: Path | None = None
        self._scratch_cleanup: weakref.finalize | None = None

    # -- voices

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self.engine.version
        return self._version

    def _load_voices(self) -> None:
        # The voice list is kept on disk per engine version: a session whose
        # clips are all cached then starts no engine at all.
        digest = hashlib.sha256(f"{self.engine.name}\0{self.version}".encode()).hexdigest()[:24]
        path = self.cache.root / f"voices-{digest}.json"
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            self._voices = [VoiceInfo(v[0], v[1], tuple(v[2])) for v in stored["voices"]]
            self._variants = list(stored["variants"])
            return
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass
        self._voices = list(self.engine.voices())
        variants = getattr(self.engine, "variants", None)
        self._variants = list(variants()) if callable(variants) else []
        data = {
            "voices": [[v.id, v.name, list(v.languages)] for v in self._voices],
            "variants": self._variants,
        }
        # A cache, read back with a fallback (above): not worth an fsync on the way
        # to a session's first clip.
        replace_small_file(path, json.dumps(data), durable=False)

    def voices(self) -> list[VoiceInfo]:
        """The engine's voices (from the cache when known)."""
        with self._lock:
            if self._voices is None:
                self._load_voices()
            return list(self._voices or [])

    def resolve(self, voice: VoiceSettings, language: str) -> str:
        """The engine voice id for a request; VoiceError naming close matches if unknown."""
        language = language or DEFAULT_LANGUAGE
        with self._lock:
            known = self._resolved.get((voice.name, language))
            if known is not None:
                return known
            voices = self.voices()
            if self.engine.name != "pyttsx3" and len(voices) == 1 and voice.name is None:
                found = voices[0].id  # a command engine with its one default voice
            elif voice.name is None:
                found = default_voice(voices, language, variants=self._variants)
            else:
                found = find_voice(voices, voice.name, variants=self._variants)
            self._resolved[(voice.name, language)] = found
            return found

    # -- clips

    def _key(self, text: str, voice: VoiceSettings, language: str) -> tuple[str, str]:
        voice_id = self.resolve(voice, language)
        key = clip_key(
            engine=self.engine.name,
            version=self.version,
            voice_id=voice_id,
            rate=voice.rate,
            volume=voice.volume,
            text=text,
            sample_rate=self.sample_rate,
        )
        return key, voice_id

    def known_frames(self, text: str, voice: VoiceSettings, language: str) -> int | None:
        """The clip's length if it is already made (memory or disk); never synthesizes."""
        key, _ = self._key(text, voice, language)
        return self._known(key)

    def _known(self, key: str) -> int | None:
        with self._lock:
            frames = self._frames.get(key)
        if frames is None:
            frames = self.cache.frames(key)
            if frames is not None:
                with self._lock:
                    self._frames[key] = frames
        return frames

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int:
        """Exactly len(self.clip(...)); synthesizes (blocking) on a miss."""
        key, voice_id = self._key(text, voice, language)
        return self._ensure(key, text, voice_id, voice)

    def clip(self, text: str, voice: VoiceSettings, language: str) -> np.ndarray:
        """The clip, float32 (frames, 1) at `sample_rate`; synthesizes on a miss."""
        key, voice_id = self._key(text, voice, language)
        for _ in range(2):
            with self._lock:
                clip = self._memory.get(key)
                if clip is not None:
                    self._memory.move_to_end(key)
                    return clip
            self._ensure(key, text, voice_id, voice)
            clip = self.cache.load(key)
            if clip is not None:
                self._remember(key, clip)
                return clip
            with self._lock:  # damaged between the check and the read: make it again
                self._frames.pop(key, None)
        raise VoiceError(f"the clip for {text[:50]!r} cannot be stored in {self.cache.root}")

    def _ensure(self, key: str, text: str, voice_id: str, voice: VoiceSettings) -> int:
        """The clip's frames once it is on disk: wait for it, take it over, or make it."""
        while True:
            with self._lock:
                job = self._jobs.get(key)
                if job is None:
                    frames = self._known(key)
                    if frames is not None:
                        return frames
                    job = _Job(key, text, voice_id, voice)
                    self._jobs[key] = job
                mine = self._claim(job)
            if mine:
                self._run(job)
            else:
                job.finished.wait()
            if job.state == "cancelled":
                continue  # cancelled before it started: make it here
            if job.error is not None:
                raise job.error
            assert job.frames is not None
            return job.frames

    def _claim(self, job: _Job) -> bool:
        with self._lock:
            if job.state != "queued":
                return False
            job.state = "running"
            return True

    def _drop(self, job: _Job) -> None:
        with self._lock:
            if job.state != "queued":
                return
            job.state = "cancelled"
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
        job.finished.set()

    def _run(self, job: _Job) -> None:
        try:
            job.frames = self._make(job)
        except BaseException as exc:  # handed to every waiter, raised there
            job.error = exc
        finally:
            with self._lock:
                if self._jobs.get(job.key) is job:
                    del self._jobs[job.key]
                job.state = "done"
            job.finished.set()

    def _scratch_folder(self) -> Path:
        """Where engines write their WAVs: one private folder for the bank's life
        (a folder made and removed per clip cost ~0.6 ms of the main process each)."""
        with self._lock:
            if self._scratch is None:
                folder = tempfile.mkdtemp(prefix="prtvoice-tts-")
                self._scratch = Path(folder)
                self._scratch_cleanup = weakref.finalize(self, shutil.rmtree, folder, True)
            return self._scratch

    def _make(self, job: _Job) -> int:
        # One job per key at a time (self._jobs), so the key names its file.
        out = self._scratch_folder() / f"{job.key}.wav"
        try:
            self.engine.synthesize(
                job.text,
                voice_id=job.voice_id,
                rate=job.voice.rate,
                volume=job.voice.volume,
                out=out,
            )
            if not out.is_file() or out.stat().st_size == 0:
                raise VoiceError(f"the speech engine wrote no audio for {job.text[:50]!r}")
            samples, engine_rate = read_engine_wav(out)
        finally:
            out.unlink(missing_ok=True)
        try:
            shaped = shape_clip(samples, engine_rate=engine_rate, sample_rate=self.sample_rate)
        except VoiceError as exc:
            raise VoiceError(f"{exc} for {job.text[:50]!r}") from None
        stored = self.cache.store(job.key, shaped)
        with self._lock:
            self._frames[job.key] = len(stored)
        self._remember(job.key, stored)
        return len(stored)

    def _remember(self, key: str, clip: np.ndarray) -> None:
        with self._lock:
            if key in self._memory or clip.nbytes > self._memory_limit:
                return
            self._memory[key] = clip
            self._memory_used += clip.nbytes
            while self._memory_used > self._memory_limit:
                _, old = self._memory.popitem(last=False)
                self._memory_used -= old.nbytes

    # -- many clips

    def _batch(self, requests: Iterable[Request]) -> list[_Job]:
        jobs: list[_Job] = []
        with self._lock:
            for text, voice, language in requests:
                key, voice_id = self._key(text, voice, language)
                if key in self._jobs or self._known(key) is not None:
                    continue
                job = _Job(key, text, voice_id, voice)
                self._jobs[key] = job
                jobs.append(job)
        return jobs

    def prefetch(self, requests: Iterable[Request]) -> None:
        """Make every missing clip, `jobs` at a time; blocking; raises the first failure.

        Interrupted (Ctrl-C, SIGTERM raised as an exception), it starts no further
        clip and lets the ones being made finish before the exception goes on: a
        daemon thread cut off at exit would leave a half-written temp in the cache.
        """
        handle = self.prefetch_background(requests)
        try:
            handle.wait()
        except BaseException:
            handle.cancel()
            # Wait on the jobs, not Thread.join: a join the signal interrupted can mark
            # a thread that is still running as stopped (CPython's bpo-45274 handling
            # releases the running thread's own lock), and a later join returns at once.
            for job in handle._jobs:
                job.finished.wait(timeout=30)
            raise

    def prefetch_background(self, requests: Iterable[Request]) -> Prefetch:
        """Make every missing clip in the background, in request order.

        Unknown voices raise here, at once. frames()/clip() of a clip still
        queued make it at once; of one being made, wait for it.
        """
        handle = Prefetch(self, self._batch(requests), self.jobs)
        with self._lock:
            self._prefetches = [p for p in self._prefetches if not p.done()] + [handle]
        return handle

    def close(self) -> None:
        """Cancel background work and stop the engine's workers."""
        with self._lock:
            prefetches, self._prefetches = self._prefetches, []
        for handle in prefetches:
            handle.cancel()
        for handle in prefetches:
            for thread in handle._threads:
                thread.join()
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()
        with self._lock:
            cleanup, self._scratch, self._scratch_cleanup = self._scratch_cleanup, None, None
        if cleanup is not None:
            cleanup()

    def __enter__(self) -> VoiceBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
