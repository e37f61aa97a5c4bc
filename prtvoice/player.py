"""Live playback: a producer thread renders blocks into a bounded queue, a
sounddevice callback plays them, and a Controller steers both.

The shape follows python-sounddevice's ``play_long_file.py``: the callback only
pops ready blocks, pads the last one and raises ``CallbackStop``. Exceptions
inside the callback never reach the main thread by themselves, so they are
caught there and handed over through the controller (``wait()`` re-raises).

Everything the listener hears is shaped per sample inside the callback: volume
changes and fades are linear ramps (no zipper noise), pausing fades out and
back in, seeking fades out the old place before the new one fades in, and
stopping fades out over two seconds. The callback owns all playback state;
other threads talk to it through a command deque, so there are no locks on
the audio path.

Nothing here prints: `Controller.snapshot()` exposes what a display needs.
"""

from __future__ import annotations

import collections
import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from prtvoice import device as portaudio
from prtvoice.device import device_hint, import_sounddevice
from prtvoice.errors import AudioDeviceError, PrtvoiceError

# Listener-facing constants: chosen by ear, documented in the README.
VOLUME_STEP_DB = 3.0  # one press of up/down
MIN_VOLUME = 10 ** (-30 / 20)  # down never goes fully silent: the listener may think it broke
MAX_VOLUME = 1.0  # the render is already at its loudness target; more would clip
STOP_FADE_SECONDS = 2.0
PAUSE_FADE_SECONDS = 0.15
SEEK_FADE_SECONDS = 0.04
VOLUME_RAMP_SECONDS = 0.05
QUEUE_SECONDS = 2.0  # rendered audio held ahead of the device: rides out load spikes
# PortAudio's buffer ('high' on PulseAudio-ALSA is only ~35 ms; 0.2 s still
# underflowed with two busy processes on a 2-core machine).
DEVICE_LATENCY_SECONDS = 0.3
PREBUFFER_BLOCKS = 3  # blocks ready before the first sample plays (~0.56 s)
WATCHDOG_SECONDS = 4.0  # no callback for this long: the device went away
# Silence before the first sample: a sound server joining a new stream may
# drop its first milliseconds (measured: ~3 ms on PulseAudio through ALSA),
# and the session's first bell should be heard from its very start.
LEAD_IN_SECONDS = 0.02


class BlockSource(Protocol):
    """What the player plays: audio that can (re)start at any section.

    `open(section)` returns the absolute frame where that section starts and
    an iterator of float32 blocks, shape (frames, 1), from there to the end.
    It is called from the producer thread, so it may block (synthesis).
    """

    sample_rate: int

    def section_titles(self) -> Sequence[str]: ...

    def open(self, section: int) -> tuple[int, Iterator[np.ndarray]]: ...

    def describe(self, frame: int) -> tuple[int, str | None]:
        """(section index, text being spoken or None) at `frame`."""
        ...

    def total_frames(self) -> int | None:
        """The session's length, exact or the best estimate so far (None: unknown)."""
        ...


@dataclass(frozen=True)
class Snapshot:
    """What a display shows; positions are frames on the session's timeline."""

    position: int
    total: int | None
    sample_rate: int
    section: int
    section_title: str
    sections: int
    text: str | None
    paused: bool
    volume: float
    started: bool
    finished: bool
    underflows: int
    gaps: int

    @property
    def elapsed_seconds(self) -> float:
        return self.position / self.sample_rate

    @property
    def remaining_seconds(self) -> float | None:
        if self.total is None:
            return None
        return max(0, self.total - self.position) / self.sample_rate


@dataclass(frozen=True)
class PlayResult:
    """How a session ended.

    `completed` is True when it played to the end (not stopped). `position` is
    where it stopped on the timeline, `section` the section playing there.
    `underflows` counts device underflows reported to the callback; `gaps`
    counts callbacks that found no rendered audio ready (the renderer fell
    behind). `first_sound` is seconds from `Controller.start()` to the callback
    that handed the device its first non-silent sample (None: never).
    """

    completed: bool
    position: int
    section: int
    underflows: int
    gaps: int
    first_sound: float | None


def make_tick(sample_rate: int, *, pitch: float, seconds: float = 0.03, level: float = 0.12):
    """A soft, short tick (a sine with a smooth envelope): 'your key worked'."""
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    envelope = np.sin(np.pi * np.arange(n) / n) ** 2  # no click at either end
    return (level * envelope * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


class _Ramp:
    """A gain that moves linearly to a target at a set rate, sample by sample.

    The number of frames a move takes is fixed when it starts, so a fade that
    spans many callbacks still ends on exactly the frame it should.
    """

    def __init__(self, value: float) -> None:
        self.value = float(value)
        self.target = float(value)
        self.step = 0.0
        self._left = 0

    def go(self, target: float, frames: int, *, full_scale: float | None = None) -> None:
        """Head to `target` over `frames` (or at the rate that spans `full_scale` in `frames`)."""
        self.target = float(target)
        distance = abs(self.target - self.value)
        span = distance if full_scale is None else full_scale
        self.step = span / max(1, frames)
        # A hair of tolerance: 1.0 / (1 / n) is not always exactly n in floats.
        self._left = math.ceil(distance / self.step - 1e-6) if self.step > 0 else 0
        if self._left <= 0:
            self.value = self.target

    def settled(self) -> bool:
        return self._left <= 0

    def remaining(self) -> int:
        return max(0, self._left)

    def take(self, n: int) -> np.ndarray | float:
        if self._left <= 0 or n <= 0:
            return self.value
        direction = 1.0 if self.target > self.value else -1.0
        k = min(n, self._left)
        values = self.value + direction * self.step * np.arange(1, k + 1)
        self._left -= k
        if self._left == 0:
            values[-1] = self.target
        limit = np.minimum if direction > 0 else np.maximum
        values = limit(values, self.target)
        self.value = float(values[-1])
        if k < n:
            values = np.concatenate([values, np.full(n - k, self.target)])
        return values


_END = object()

# Callback modes.
_WAITING = "waiting"  # before the first block: silence
_PLAYING = "playing"
_PAUSING = "pausing"  # fading out, then paused
_PAUSED = "paused"
_SEEK_OUT = "seek-out"  # fading out the old place
_SEEK_WAIT = "seek-wait"  # silence until the new place's first block
_STOPPING = "stopping"  # the long fade-out of a stop
_DONE = "done"


class Controller:
    """Plays a BlockSource on an output device and takes the listener's commands.

    Thread-safe: every command may be called from any thread (a key loop, a
    test, a signal handler). Commands only queue a request; the audio callback
    applies it at its next buffer. `start()` opens the stream and returns at
    once; `wait()` blocks until the session ends and raises what went wrong.
    `stream_factory` is injected by tests that run without a device.
    """

    def __init__(
        self,
        source: BlockSource,
        *,
        device: int | str | None = None,
        volume: float = 1.0,
        start_section: int = 0,
        block_frames: int = 8192,
        block_queue_seconds: float = QUEUE_SECONDS,
        latency: float | str = DEVICE_LATENCY_SECONDS,
        stream_factory: Callable[..., Any] | None = None,
        on_first_sound: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.sample_rate = source.sample_rate
        self._titles = list(source.section_titles())
        if not self._titles:
            raise ValueError("a source needs at least one section")
        self._device = device
        self._latency = latency
        self._stream_factory = stream_factory
        self._on_first_sound = on_first_sound
        self._start_section = min(max(0, start_section), len(self._titles) - 1)
        self._volume_wanted = _clamp_volume(volume)

        sr = self.sample_rate
        self._queue: queue.Queue = queue.Queue(
            maxsize=max(PREBUFFER_BLOCKS + 1, round(block_queue_seconds * sr / block_frames))
        )
        self._commands: collections.deque = collections.deque()
        self._seek_lock = threading.Lock()
        self._seek_request: tuple[int, int] | None = None  # (generation, section)
        self._generation = 0  # newest generation asked for (producer reads)
        self._live_generation = 0  # generation the callback plays (set by the callback)
        self._requested_section = self._start_section
        self._closing = threading.Event()
        self._stream_started = threading.Event()  # asked to start (once)
        self._stream_running = threading.Event()  # start() returned
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._stream = None
        self._producer: threading.Thread | None = None
        self._t0 = 0.0

        # Callback-owned state (other threads only read it, for snapshots).
        self._mode = _WAITING
        self._fade = _Ramp(1.0)
        self._gain = _Ramp(self._volume_wanted)
        self._play_generation = 0
        self._block: np.ndarray | None = None
        self._block_start = 0
        self._offset = 0
        self._peeked: Any = None
        self._position = 0
        self._ended = False  # the source ran out (for this generation)
        self._need_new_place = False  # a seek waits for its first block
        self._drain_left: int | None = None
        self._lead_left = round(LEAD_IN_SECONDS * sr)
        drain = latency if isinstance(latency, (int, float)) else DEVICE_LATENCY_SECONDS
        self._drain_frames = round((drain + 0.1) * sr)
        self._stopped = False  # stop() ended it, not the source
        self._underflows = 0
        self._gaps = 0
        self._first_sound: float | None = None
        self._last_callback = 0.0
        self._tick: np.ndarray | None = None
        self._tick_at = 0
        self._ticks = {
            "pause": make_tick(sr, pitch=660.0),
            "resume": make_tick(sr, pitch=990.0),
        }
        self._scratch = np.zeros(0, dtype=np.float32)
        # Imported here, not in start(): a caller may turn signals into exceptions
        # around start(), and one arriving while this thread waits for a module
        # another thread is importing (PortAudio's warm-up) can leave Python's
        # import locks held, so the renderer's next import would wait forever.
        self._stop_exception, self._abort_exception = callback_exceptions()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Controller:
        """Open the output stream and start producing; returns at once.

        Device errors are raised here. The stream itself starts when the first
        blocks are rendered: a device started earlier would fill its buffer
        with silence that then plays ahead of the first sound.
        """
        self._t0 = time.perf_counter()
        self._stream = self._open_stream()
        self._producer = threading.Thread(target=self._produce, name="prtvoice-render", daemon=True)
        with self._seek_lock:
            self._seek_request = (0, self._start_section)
        self._producer.start()
        return self

    def _start_stream(self) -> None:
        """Start the device once (from the producer thread, when audio is ready)."""
        if self._stream_started.is_set():
            return
        self._stream_started.set()
        stream = self._stream
        if stream is None or self._closing.is_set():
            return
        try:
            portaudio.call("starting the output", stream.start)
            # The watchdog counts from here: a start that hangs has its own deadline.
            self._last_callback = time.monotonic()
            self._stream_running.set()
        except AudioDeviceError as exc:
            self._error = exc
        except Exception as exc:
            message = f"could not start the audio output ({exc}): {device_hint()}"
            self._error = AudioDeviceError(message)

    def _open_stream(self):
        if self._stream_factory is not None:
            return self._stream_factory(
                samplerate=self.sample_rate,
                channels=1,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished,
            )
        sd = import_sounddevice()
        wanted = self._device
        try:
            if wanted is not None:
                # ValueError when nothing matches
                portaudio.call("finding the device", sd.query_devices, wanted, "output")
            kwargs = dict(
                samplerate=self.sample_rate,
                device=wanted,
                dtype="float32",
                latency=self._latency,
                callback=self._callback,
                finished_callback=self._finished,
            )
            try:
                return portaudio.call("opening the output", sd.OutputStream, channels=1, **kwargs)
            except sd.PortAudioError:
                # Some devices take stereo only; the callback copies mono to every channel.
                return portaudio.call("opening the output", sd.OutputStream, channels=2, **kwargs)
        except ValueError as exc:
            raise AudioDeviceError(
                f"no output device matches {wanted!r}: {device_hint()}"
            ) from exc
        except sd.PortAudioError as exc:
            message = f"could not open the audio output ({exc}): {device_hint()}"
            raise AudioDeviceError(message) from exc

    def wait(self, timeout: float | None = None) -> PlayResult | None:
        """Block until the session ends; return how it ended (None on timeout).

        Raises the renderer's error, or AudioDeviceError when the device failed
        or stopped asking for audio.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.wait(0.05):
            if self._error is not None and self._mode != _DONE:
                self._abort()
                break
            if (
                self._stream_running.is_set()
                and time.monotonic() - self._last_callback > WATCHDOG_SECONDS
                and self._stream is not None
            ):
                self._error = AudioDeviceError(
                    "the audio device stopped playing (was it unplugged, or did the sound "
                    f"server stop?): {device_hint()}"
                )
                self._abort()
                break
            if deadline is not None and time.monotonic() > deadline:
                return None
        self.close()
        if self._error is not None:
            error = self._error
            if isinstance(error, PrtvoiceError):
                raise error
            raise AudioDeviceError(f"playback failed: {error}: {device_hint()}") from error
        section, _ = self.source.describe(self._position)
        return PlayResult(
            completed=self._ended and not self._stopped,
            position=self._position,
            section=section,
            underflows=self._underflows,
            gaps=self._gaps,
            first_sound=self._first_sound,
        )

    def close(self) -> None:
        """Release the stream and the producer (idempotent)."""
        self._closing.set()
        stream, self._stream = self._stream, None
        if stream is not None and not portaudio.hung():
            # Closing a dead device must not hide the real error, nor hang.
            with contextlib.suppress(Exception):
                portaudio.call("closing the output", stream.close, ignore_errors=True,
                               timeout=portaudio.STOP_SECONDS)
        if self._producer is not None and self._producer is not threading.current_thread():
            self._producer.join(timeout=2.0)

    def _abort(self) -> None:
        stream = self._stream
        if stream is not None and not portaudio.hung():
            with contextlib.suppress(Exception):
                portaudio.call("stopping the output", stream.abort, ignore_errors=True,
                               timeout=portaudio.STOP_SECONDS)
        self._done.set()

    def _finished(self) -> None:
        # PortAudio also ends the stream on its own when the device fails (a sound
        # server that went away): that is an error, not the listener's stop.
        if self._mode != _DONE and self._error is None and not self._closing.is_set():
            self._error = AudioDeviceError(
                "the audio device stopped playing (was it unplugged, or did the sound "
                f"server stop?): {device_hint()}"
            )
        self._done.set()

    # -- commands ----------------------------------------------------------

    def pause(self) -> None:
        """Fade out and hold the place (a soft tick confirms)."""
        self._commands.append(("pause",))

    def resume(self) -> None:
        """Fade back in where it paused (a soft tick confirms)."""
        self._commands.append(("resume",))

    def toggle(self) -> None:
        """Pause when playing, resume when paused."""
        self._commands.append(("toggle",))

    def next_section(self) -> None:
        """Jump to the start of the next section (at the last one: its start)."""
        self.seek_section(self._current_section() + 1)

    def previous_section(self) -> None:
        """Jump to the start of the previous section (at the first one: its start)."""
        self.seek_section(self._current_section() - 1)

    def _current_section(self) -> int:
        # Presses in quick succession count from the place asked for, not the
        # one still fading out.
        if self._generation != self._live_generation:
            return self._requested_section
        return self.snapshot().section

    def seek_section(self, section: int) -> None:
        """Restart playback at the start of `section` (clamped to the script)."""
        section = min(max(0, section), len(self._titles) - 1)
        with self._seek_lock:
            self._generation += 1
            self._requested_section = section
            self._seek_request = (self._generation, section)
            generation = self._generation
        self._commands.append(("seek", generation, section))

    def volume_up(self) -> None:
        self.set_volume(self._volume_wanted * 10 ** (VOLUME_STEP_DB / 20))

    def volume_down(self) -> None:
        self.set_volume(self._volume_wanted / 10 ** (VOLUME_STEP_DB / 20))

    def set_volume(self, volume: float) -> None:
        """Set the volume (a factor, kept within MIN_VOLUME..MAX_VOLUME), ramped smoothly."""
        self._volume_wanted = _clamp_volume(volume)
        self._commands.append(("volume", self._volume_wanted))

    def stop(self, *, fade: bool = True) -> None:
        """End the session: a two-second fade-out, or a very short one with fade=False."""
        seconds = STOP_FADE_SECONDS if fade else 0.02
        self._commands.append(("stop", seconds))

    @property
    def volume(self) -> float:
        return self._volume_wanted

    def snapshot(self) -> Snapshot:
        """The state right now, for a display. Safe from any thread."""
        position = self._position
        section, text = self.source.describe(position)
        section = min(max(0, section), len(self._titles) - 1)
        mode = self._mode
        return Snapshot(
            position=position,
            total=self.source.total_frames(),
            sample_rate=self.sample_rate,
            section=section,
            section_title=self._titles[section],
            sections=len(self._titles),
            text=text if mode not in (_WAITING, _SEEK_WAIT) else None,
            paused=mode in (_PAUSING, _PAUSED),
            volume=self._volume_wanted,
            started=self._first_sound is not None,
            finished=self._done.is_set(),
            underflows=self._underflows,
            gaps=self._gaps,
        )

    # -- the producer thread ----------------------------------------------

    def _produce(self) -> None:
        blocks: Iterator[np.ndarray] | None = None
        generation = -1
        position = 0
        try:
            while not self._closing.is_set():
                with self._seek_lock:
                    request, self._seek_request = self._seek_request, None
                if request is not None:
                    generation, section = request
                    _close_iterator(blocks)
                    position, blocks = self.source.open(section)
                    self._put((generation, "start", position, section))
                if blocks is None:
                    time.sleep(0.01)
                    continue
                block = next(blocks, None)
                if block is None:
                    self._put((generation, "end", position, None))
                    blocks = None
                    continue
                if block.ndim == 1:
                    block = block[:, None]
                self._put((generation, "audio", position, block))
                position += len(block)
        except BaseException as exc:  # handed to wait(); the callback ends the stream
            self._error = exc
            self._put((generation, "end", position, None))
        finally:
            _close_iterator(blocks)

    def _put(self, item) -> None:
        while not self._closing.is_set():
            if item[0] < self._generation and self._error is None:
                return  # a newer place is wanted: this block would be dropped anyway
            try:
                self._queue.put(item, timeout=0.05)
                break
            except queue.Full:
                self._start_stream()  # a full queue is surely enough to start on
                continue
        if not self._stream_started.is_set() and (
            item[1] == "end" or self._queue.qsize() >= PREBUFFER_BLOCKS
        ):
            self._start_stream()

    # -- the audio callback ------------------------------------------------

    def _callback(self, outdata, frames, time_info, status) -> None:
        try:
            self._last_callback = time.monotonic()
            if status.output_underflow:
                self._underflows += 1
            mono = self._render(frames)
            outdata[:] = mono[:, None]
            if self._first_sound is None and self._mode != _WAITING and np.any(mono):
                self._first_sound = time.perf_counter() - self._t0
                if self._on_first_sound is not None:
                    self._on_first_sound(self._first_sound)
        except self._stop_exception:
            raise
        except BaseException as exc:  # never lost: wait() raises it
            self._error = exc
            outdata.fill(0)
            raise self._abort_exception from exc
        if self._mode == _DONE:
            # PortAudio may drop what is still buffered when the stream stops,
            # so trail silence for the device latency: the last sound (a fade's
            # tail, a bell's ring-out) is heard in full.
            if self._drain_left is None:
                self._drain_left = self._drain_frames
            self._drain_left -= frames
            if self._drain_left <= 0:
                raise self._stop_exception

    def _render(self, frames: int) -> np.ndarray:
        sr = self.sample_rate
        self._apply_commands()
        if len(self._scratch) < frames:
            self._scratch = np.zeros(frames, dtype=np.float32)
        out = np.zeros(frames, dtype=np.float32)
        pos = 0
        while pos < frames:
            mode = self._mode
            if mode == _WAITING:
                if self._lead_left > 0:
                    skip = min(self._lead_left, frames - pos)
                    self._lead_left -= skip
                    pos += skip
                    continue
                if not self._ready_to_start():
                    break
                self._mode = _PLAYING
                continue
            if mode in (_PAUSED, _DONE):
                break
            if mode == _SEEK_WAIT:
                item = self._peek_item()
                while item is not None and item[0] < self._play_generation:
                    self._drop_item()
                    item = self._peek_item()
                if item is None:
                    break
                self._block = None  # the old place is left for good
                self._need_new_place = False
                self._fade = _Ramp(0.0)
                self._fade.go(1.0, round(SEEK_FADE_SECONDS * sr))
                self._mode = _PLAYING
                continue
            # Modes that consume audio: playing, pausing, seek-out, stopping.
            want = frames - pos
            fading_out = mode in (_PAUSING, _SEEK_OUT, _STOPPING)
            if fading_out:
                want = min(want, self._fade.remaining()) if not self._fade.settled() else 0
            got = self._read(self._scratch[:want], stop_generation=mode == _SEEK_OUT) if want else 0
            if got:
                gain = self._fade.take(got) * self._gain.take(got)
                out[pos : pos + got] = self._scratch[:got] * gain
                pos += got
            if fading_out and self._fade.settled():
                self._mode = {_PAUSING: _PAUSED, _SEEK_OUT: _SEEK_WAIT, _STOPPING: _DONE}[mode]
                if mode == _STOPPING:
                    self._stopped = True
                continue
            if got < want:
                if self._ended:
                    if mode == _SEEK_OUT:  # the old place ran out while fading: go on
                        self._mode = _SEEK_WAIT
                        continue
                    self._mode = _DONE
                    break
                if mode == _PLAYING:
                    self._gaps += 1  # the renderer fell behind: silence until it catches up
                break
        self._mix_tick(out)
        return out

    def _apply_commands(self) -> None:
        sr = self.sample_rate
        while self._commands:
            command = self._commands.popleft()
            name = command[0]
            mode = self._mode
            if name == "toggle":
                name = "resume" if mode in (_PAUSING, _PAUSED) else "pause"
            if mode == _DONE:
                continue
            if name == "pause" and mode in (_PLAYING, _WAITING, _SEEK_WAIT):
                self._start_tick("pause")
                if mode == _PLAYING:
                    self._fade.go(0.0, round(PAUSE_FADE_SECONDS * sr), full_scale=1.0)
                    self._mode = _PAUSING
                else:
                    self._fade = _Ramp(0.0)
                    self._need_new_place = True  # nothing was playing yet: start cleanly
                    self._mode = _PAUSED
            elif name == "resume" and mode in (_PAUSING, _PAUSED):
                self._start_tick("resume")
                self._fade.go(1.0, round(PAUSE_FADE_SECONDS * sr), full_scale=1.0)
                self._mode = _SEEK_WAIT if self._need_new_place else _PLAYING
            elif name == "seek":
                if mode == _STOPPING:
                    continue  # a stop in progress wins
                generation = command[1]
                self._play_generation = generation
                self._need_new_place = True
                self._ended = False
                if mode in (_PLAYING, _SEEK_OUT):
                    self._fade.go(0.0, round(SEEK_FADE_SECONDS * sr), full_scale=1.0)
                    self._mode = _SEEK_OUT
                elif mode in (_PAUSING, _PAUSED):
                    self._fade = _Ramp(0.0)
                    self._mode = _PAUSED  # stays paused; resuming starts at the new place
                else:
                    self._fade = _Ramp(0.0)
                    self._mode = _SEEK_WAIT
            elif name == "volume":
                self._gain.go(command[1], round(VOLUME_RAMP_SECONDS * sr), full_scale=MAX_VOLUME)
            elif name == "stop":
                frames = round(command[1] * sr)
                if mode in (_PLAYING, _PAUSING, _SEEK_OUT, _STOPPING) and self._fade.value > 0:
                    # The whole fade takes `frames` from full level: a stop mid-fade is quicker.
                    self._fade.go(0.0, frames, full_scale=1.0)
                    self._mode = _STOPPING
                else:
                    self._stopped = True
                    self._mode = _DONE

    def _ready_to_start(self) -> bool:
        if self._queue.qsize() >= PREBUFFER_BLOCKS:
            return True
        # A short source may end before filling the prebuffer.
        with self._queue.mutex:
            return any(item[1] == "end" for item in self._queue.queue)

    def _peek_item(self):
        if self._peeked is None:
            try:
                self._peeked = self._queue.get_nowait()
            except queue.Empty:
                return None
        return self._peeked

    def _drop_item(self) -> None:
        self._peeked = None

    def _read(self, target: np.ndarray, *, stop_generation: bool) -> int:
        """Copy content into `target`; returns frames copied (fewer: starved or ended)."""
        got = 0
        n = len(target)
        while got < n:
            if self._block is not None and self._offset < len(self._block):
                take = min(n - got, len(self._block) - self._offset)
                target[got : got + take] = self._block[self._offset : self._offset + take, 0]
                self._offset += take
                got += take
                self._position = self._block_start + self._offset
                continue
            self._block = None
            item = self._peek_item()
            if item is None:
                break
            generation, kind, start, payload = item
            if stop_generation:
                if generation >= self._play_generation:
                    break  # the new place waits until the old one has faded out
            elif generation < self._play_generation:
                self._drop_item()  # a block of a place the listener left
                continue
            self._drop_item()
            if kind == "start":
                self._live_generation = generation
                self._position = start
                self._ended = False
                continue
            if kind == "end":
                self._ended = True
                break
            self._block, self._block_start, self._offset = payload, start, 0
        return got

    def _start_tick(self, which: str) -> None:
        self._tick = self._ticks[which]
        self._tick_at = 0

    def _mix_tick(self, out: np.ndarray) -> None:
        tick = self._tick
        if tick is None:
            return
        take = min(len(out), len(tick) - self._tick_at)
        out[:take] += tick[self._tick_at : self._tick_at + take] * max(self._volume_wanted, 0.25)
        self._tick_at += take
        if self._tick_at >= len(tick):
            self._tick = None


def _clamp_volume(volume: float) -> float:
    return float(min(MAX_VOLUME, max(MIN_VOLUME, volume)))


def _close_iterator(blocks) -> None:
    close = getattr(blocks, "close", None)
    if close is not None:
        close()


def callback_exceptions() -> tuple[type[BaseException], type[BaseException]]:
    """(CallbackStop, CallbackAbort): sounddevice's, or stand-ins without PortAudio."""
    try:
        sounddevice = import_sounddevice()
    except AudioDeviceError:
        if portaudio.hung():
            raise
        return CallbackStop, CallbackAbort  # an injected stream on a machine without PortAudio
    return sounddevice.CallbackStop, sounddevice.CallbackAbort


class CallbackStop(Exception):
    """Stand-in for sounddevice.CallbackStop when PortAudio is missing."""


class CallbackAbort(Exception):
    """Stand-in for sounddevice.CallbackAbort when PortAudio is missing."""


# ---------------------------------------------------------------------------
# A source made of a whole array: for tests and short previews.


class ArraySource:
    """Plays a ready array: `audio` (frames, 1) with sections starting at `starts`."""

    def __init__(
        self,
        audio: np.ndarray,
        *,
        sample_rate: int,
        starts: Sequence[int],
        titles: Sequence[str] | None = None,
        block_frames: int = 4096,
        texts: Sequence[tuple[int, int, str]] = (),
    ) -> None:
        self.audio = audio if audio.ndim == 2 else audio[:, None]
        self.sample_rate = sample_rate
        self.starts = list(starts)
        self.titles = list(titles) if titles else [f"Section {i + 1}" for i in range(len(starts))]
        self.block_frames = block_frames
        self.texts = list(texts)

    def section_titles(self) -> Sequence[str]:
        return self.titles

    def open(self, section: int) -> tuple[int, Iterator[np.ndarray]]:
        start = self.starts[section]

        def blocks():
            for at in range(start, len(self.audio), self.block_frames):
                yield self.audio[at : at + self.block_frames]

        return start, blocks()

    def describe(self, frame: int) -> tuple[int, str | None]:
        section = max(0, sum(1 for s in self.starts if s <= frame) - 1)
        text = next((t for s, e, t in self.texts if s <= frame < e), None)
        return section, text

    def total_frames(self) -> int | None:
        return len(self.audio)
