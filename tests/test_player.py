"""The live player: the callback's exact output (fake stream, fast), and real
sessions played through sounddevice into a PulseAudio null sink (recorded from
its monitor and compared with what was rendered).
"""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
import sounddevice as sd

from prtvoice import player
from prtvoice.errors import AudioDeviceError, VoiceError
from prtvoice.player import ArraySource, Controller

SR = 44100
PAUSE_FADE = round(player.PAUSE_FADE_SECONDS * SR)
SEEK_FADE = round(player.SEEK_FADE_SECONDS * SR)
STOP_FADE = round(player.STOP_FADE_SECONDS * SR)
TICK = round(0.03 * SR)


class _Status:
    output_underflow = False


class FakeStream:
    """Calls the callback like PortAudio would, as fast as the producer allows.

    `hook(frames_out, controller)` runs before every callback, so a test can
    issue commands at exact points of the output.
    """

    def __init__(self, controller_ref, hook, *, callback, finished_callback, frames=512, **_):
        self.controller_ref = controller_ref
        self.hook = hook
        self.callback = callback
        self.finished_callback = finished_callback
        self.frames = frames
        self.out: list[np.ndarray] = []
        self.closed = False
        self.status = _Status()

    def start(self):
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        controller = self.controller_ref[0]
        done = 0
        try:
            while not self.closed:
                # Wait for rendered audio like a real device would not: the
                # comparisons below are exact only without gaps.
                while controller._queue.empty() and controller._peeked is None and not self.closed:
                    if controller._ended and controller._block is None:
                        break
                    time.sleep(0.0005)
                if self.hook is not None:
                    self.hook(done, controller)
                buffer = np.zeros((self.frames, 1), dtype=np.float32)
                try:
                    self.callback(buffer, self.frames, None, self.status)
                except sd.CallbackStop:
                    self.out.append(buffer[:, 0].copy())
                    break
                except sd.CallbackAbort:
                    break
                self.out.append(buffer[:, 0].copy())
                done += self.frames
        finally:
            self.finished_callback()

    def close(self, ignore_errors=True):
        self.closed = True

    def abort(self, ignore_errors=True):
        self.closed = True

    @property
    def output(self) -> np.ndarray:
        return np.concatenate(self.out) if self.out else np.zeros(0, np.float32)


def noise(frames: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(frames)).astype(np.float32)


def run_fake(source, hook=None, **kwargs):
    ref: list = []
    streams: list[FakeStream] = []

    def factory(**kw):
        stream = FakeStream(ref, hook, **kw)
        streams.append(stream)
        return stream

    controller = Controller(source, stream_factory=factory, **kwargs)
    ref.append(controller)
    controller.start()
    result = controller.wait(timeout=60)
    assert result is not None, "the fake session did not end"
    return result, streams[0].output, controller


def lead_in(out: np.ndarray) -> int:
    """Frames of silence the callback gave before the first block was ready."""
    return int(np.flatnonzero(out)[0])


# -- the callback's output, exactly ---------------------------------------------------


def test_plays_every_sample_in_order_and_ends():
    audio = noise(SR * 2)
    source = ArraySource(audio, sample_rate=SR, starts=[0, SR])
    result, out, _ = run_fake(source)
    start = lead_in(out)
    assert np.array_equal(out[start : start + len(audio)], audio)
    assert not np.any(out[start + len(audio) :])  # the last block padded with silence
    assert result.completed
    assert result.position == len(audio)
    assert (result.gaps, result.underflows) == (0, 0)
    assert result.section == 1


def test_pause_fades_out_ticks_holds_the_place_and_resumes():
    audio = noise(SR * 3, seed=1)
    source = ArraySource(audio, sample_rate=SR, starts=[0])
    marks: dict[str, int] = {}

    def hook(done, controller):
        if "pause" not in marks and done >= SR // 2:
            marks["pause"] = done
            controller.pause()
        elif "pause" in marks and "resume" not in marks and done >= marks["pause"] + SR:
            marks["resume"] = done
            marks["held"] = controller.snapshot().position
            assert controller.snapshot().paused
            controller.resume()

    result, out, _ = run_fake(source, hook)
    assert result.completed
    start = lead_in(out)
    p, r, held = marks["pause"], marks["resume"], marks["held"]
    # The fade-out plays on through the content, at a falling gain.
    fade = slice(p + TICK, p + PAUSE_FADE)
    content = audio[p - start + TICK : p - start + PAUSE_FADE]
    gain = out[fade] / np.where(content == 0, 1, content)
    assert gain[0] > 0.7 and gain[-1] < 0.02 and np.all(np.diff(gain) < 1e-6)
    assert held == p - start + PAUSE_FADE  # the place is where the fade ended
    # A soft tick confirms the key, on top of the fading content.
    faded = audio[p - start : p - start + TICK] * (1 - np.arange(1, TICK + 1) / PAUSE_FADE)
    tick = player.make_tick(SR, pitch=660.0)
    assert np.allclose(out[p : p + TICK] - faded, tick, atol=1e-6)
    assert 0.05 < np.max(np.abs(tick)) < 0.2  # audible, not startling
    # Silence while paused.
    assert not np.any(out[p + PAUSE_FADE + 1 : r])
    assert np.allclose(
        out[r : r + TICK] - audio[held : held + TICK] * (np.arange(1, TICK + 1) / PAUSE_FADE),
        player.make_tick(SR, pitch=990.0),
        atol=1e-6,
    )
    # Resuming continues from the held place, after a short fade-in and tick.
    after = r + TICK + PAUSE_FADE
    assert np.allclose(out[after : after + SR // 4], audio[held + TICK + PAUSE_FADE :][: SR // 4])
    assert result.position == len(audio)


def test_stop_fades_out_over_two_seconds_then_ends():
    audio = np.full(SR * 6, 0.5, dtype=np.float32)
    source = ArraySource(audio, sample_rate=SR, starts=[0])
    marks: dict[str, int] = {}

    def hook(done, controller):
        if "stop" not in marks and done >= SR:
            marks["stop"] = done
            controller.stop()

    result, out, _ = run_fake(source, hook)
    s = marks["stop"]
    tail = out[s:]
    assert not result.completed
    # A linear fade from full level to nothing over exactly STOP_FADE frames.
    assert np.count_nonzero(tail) == STOP_FADE - 1
    expected = 0.5 * (1 - np.arange(1, STOP_FADE + 1) / STOP_FADE)
    assert np.allclose(tail[:STOP_FADE], expected, atol=1e-6)
    assert np.max(np.abs(np.diff(out[s - 10 :]))) < 1e-4  # no step anywhere: no click


def test_next_and_previous_section_restart_at_section_starts():
    audio = noise(SR * 6, seed=2)
    starts = [0, 2 * SR, 4 * SR]
    source = ArraySource(audio, sample_rate=SR, starts=starts)
    marks: dict[str, int] = {}

    def hook(done, controller):
        if "next" not in marks and done >= SR // 2:
            marks["next"] = done
            controller.next_section()
        elif "next" in marks and "back" not in marks and done >= marks["next"] + SR // 2:
            marks["back"] = done
            controller.previous_section()

    result, out, _ = run_fake(source, hook)
    n, b = marks["next"], marks["back"]
    # After the old place fades out (and the new one fades in), section 2 plays.
    at = out[n + 2 * SEEK_FADE + 1024 :][:4096]
    i = starts[1] + _offset_in(audio[starts[1] :], at)
    assert np.array_equal(at, audio[i : i + len(at)])
    assert i - starts[1] < 2 * SEEK_FADE + 2048
    # Back from section 2 goes to section 1's start.
    at = out[b + 2 * SEEK_FADE + 1024 :][:4096]
    i = _offset_in(audio, at)
    assert i < 2 * SEEK_FADE + 2048
    assert result.completed


def _offset_in(audio: np.ndarray, piece: np.ndarray) -> int:
    from scipy.signal import correlate

    corr = correlate(audio[: len(piece) * 8], piece, mode="valid", method="fft")
    return int(np.argmax(corr))


def test_quick_presses_count_from_the_place_asked_for():
    audio = noise(SR * 8, seed=3)
    starts = [0, 2 * SR, 4 * SR, 6 * SR]
    source = ArraySource(audio, sample_rate=SR, starts=starts)
    marks: dict[str, int] = {}

    def hook(done, controller):
        if "next" not in marks and done >= SR // 4:
            marks["next"] = done
            controller.next_section()
            controller.next_section()  # before the first jump is heard

    _, out, _ = run_fake(source, hook)
    at = out[marks["next"] + 2 * SEEK_FADE + 1024 :][:4096]
    i = starts[2] + _offset_in(audio[starts[2] :], at)
    assert np.array_equal(at, audio[i : i + len(at)])


def test_volume_changes_are_ramped_without_steps():
    audio = np.full(SR * 2, 0.5, dtype=np.float32)
    source = ArraySource(audio, sample_rate=SR, starts=[0])
    marks: dict[str, int] = {}

    def hook(done, controller):
        if "down" not in marks and done >= SR // 2:
            marks["down"] = done
            controller.volume_down()
            controller.volume_down()

    _, out, controller = run_fake(source, hook)
    d = marks["down"]
    level = 0.5 * 10 ** (-2 * player.VOLUME_STEP_DB / 20)
    assert np.isclose(controller.volume, 10 ** (-2 * player.VOLUME_STEP_DB / 20))
    assert np.max(np.abs(np.diff(out[d - 100 : d + SR // 4]))) < 0.5 / (0.05 * SR) * 1.01
    assert np.allclose(out[d + SR // 4 : d + SR // 2], level, atol=1e-6)


def test_volume_stays_within_limits():
    controller = Controller(ArraySource(np.zeros(10, np.float32), sample_rate=SR, starts=[0]))
    for _ in range(50):
        controller.volume_up()
    assert controller.volume == player.MAX_VOLUME
    for _ in range(50):
        controller.volume_down()
    assert controller.volume == pytest.approx(player.MIN_VOLUME)


def test_snapshot_reports_section_text_and_times():
    audio = np.zeros(SR * 4, dtype=np.float32)
    source = ArraySource(
        audio,
        sample_rate=SR,
        starts=[0, 2 * SR],
        titles=["Arrive", "Settle"],
        texts=[(2 * SR, 3 * SR, "Notice your breath.")],
    )
    controller = Controller(source)
    controller._position = 2 * SR + 100
    controller._mode = "playing"
    snap = controller.snapshot()
    assert (snap.section, snap.section_title, snap.sections) == (1, "Settle", 2)
    assert snap.text == "Notice your breath."
    assert snap.elapsed_seconds == pytest.approx(2 + 100 / SR)
    assert snap.remaining_seconds == pytest.approx(2 - 100 / SR)


# -- failures reach the main thread -------------------------------------------------


class BrokenSource(ArraySource):
    def open(self, section):
        start, blocks = super().open(section)

        def failing():
            yield from list(blocks)[:2]
            raise VoiceError("eSpeak NG crashed")

        return start, failing()


def test_a_renderer_error_is_raised_by_wait():
    source = BrokenSource(noise(SR * 2), sample_rate=SR, starts=[0])
    with pytest.raises(VoiceError, match="crashed"):
        run_fake(source)


def test_an_error_inside_the_callback_becomes_an_audio_device_error():
    class BadStatus:
        @property
        def output_underflow(self):
            raise RuntimeError("device vanished")

    ref: list = []

    def factory(**kw):
        stream = FakeStream(ref, None, **kw)
        stream.status = BadStatus()
        return stream

    controller = Controller(
        ArraySource(noise(SR), sample_rate=SR, starts=[0]), stream_factory=factory
    )
    ref.append(controller)
    controller.start()
    with pytest.raises(AudioDeviceError, match="device vanished"):
        controller.wait(timeout=30)


def test_a_device_that_stops_asking_for_audio_is_detected(monkeypatch):
    monkeypatch.setattr(player, "WATCHDOG_SECONDS", 0.3)

    class DeadStream:
        def start(self):
            pass

        def close(self, ignore_errors=True):
            pass

        def abort(self, ignore_errors=True):
            pass

    controller = Controller(
        ArraySource(noise(SR), sample_rate=SR, starts=[0]), stream_factory=lambda **kw: DeadStream()
    )
    controller.start()
    with pytest.raises(AudioDeviceError, match="stopped playing"):
        controller.wait(timeout=30)


@pytest.fixture
def quick_deadlines(monkeypatch):
    """PortAudio calls with short deadlines; the 'hung' mark is cleared afterwards."""
    from prtvoice import device

    monkeypatch.setattr(device, "CALL_SECONDS", 0.5)
    monkeypatch.setattr(device, "STOP_SECONDS", 0.5)
    yield device
    device._hung.clear()


def test_a_portaudio_call_that_never_returns_is_a_device_error(quick_deadlines):
    device = quick_deadlines
    never = threading.Event()
    began = time.monotonic()
    with pytest.raises(AudioDeviceError, match=r"did not answer \(opening the output took over"):
        device.call("opening the output", never.wait)
    assert time.monotonic() - began < 5
    assert device.hung()
    # Nothing calls a hung PortAudio again: it would only hang there too.
    with pytest.raises(AudioDeviceError, match="stopped answering earlier"):
        device.call("listing devices", lambda: [])
    never.set()


def test_a_stream_that_hangs_in_start_ends_in_a_device_error(quick_deadlines, monkeypatch):
    # A sound server that freezes while PortAudio starts the stream: start() never
    # returns, and abort() and close() would hang as well.
    monkeypatch.setattr(player, "WATCHDOG_SECONDS", 0.3)
    never = threading.Event()
    touched: list[str] = []

    class HangingStream:
        def start(self):
            never.wait()

        def abort(self, ignore_errors=True):
            touched.append("abort")
            never.wait()

        def close(self, ignore_errors=True):
            touched.append("close")
            never.wait()

    controller = Controller(
        ArraySource(noise(SR), sample_rate=SR, starts=[0]),
        stream_factory=lambda **kw: HangingStream(),
    )
    controller.start()
    began = time.monotonic()
    with pytest.raises(AudioDeviceError, match=r"did not answer \(starting the output"):
        controller.wait(timeout=30)
    assert time.monotonic() - began < 10
    assert touched == []
    never.set()


def test_an_unknown_device_is_a_clear_error():
    controller = Controller(
        ArraySource(noise(SR), sample_rate=SR, starts=[0]), device="no such device at all"
    )
    with pytest.raises(AudioDeviceError, match=r"no output device matches.*--list-devices"):
        controller.start()
    controller.close()


# -- real playback into a PulseAudio null sink --------------------------------------


def bursts(starts, length, total, seed=5):
    """Noise bursts (each unique) at `starts`: easy to find in a recording."""
    audio = np.zeros(total, dtype=np.float32)
    rng = np.random.default_rng(seed)
    hann = np.hanning(length).astype(np.float32)
    for s in starts:
        audio[s : s + length] = 0.3 * rng.standard_normal(length).astype(np.float32) * hann
    return audio


@pytest.mark.playback
def test_real_playback_is_complete_gapless_and_starts_fast(pulse_sink):
    from pulse import find_onset

    total = SR * 6
    marks = [1000, SR + 5000, 3 * SR, 5 * SR]
    audio = bursts(marks, SR // 2, total)
    recorder = pulse_sink.record()
    controller = Controller(ArraySource(audio, sample_rate=SR, starts=[0, 3 * SR]))
    controller.start()
    result = controller.wait(timeout=30)
    recording = recorder.stop()
    assert result.completed
    # The whole session is in the recording, sample for sample: no gap, no loss.
    lag, match = find_onset(recording.samples, audio[: marks[-1] + SR // 2])
    heard = recording.samples[lag : lag + total]
    assert match > 0.9999, (match, result)
    assert np.max(np.abs(heard - audio)) < 1e-4, (
        np.flatnonzero(np.abs(heard - audio) > 1e-4)[:9],
        result,
    )
    # Each burst is exactly where it belongs relative to the first.
    onsets = [find_onset(recording.samples, audio[m : m + SR // 2])[0] for m in marks]
    assert [o - onsets[0] for o in onsets] == [m - marks[0] for m in marks]
    assert result.underflows == 0 and result.gaps == 0
    # Time from start() to the first non-silent sample arriving at the sink's monitor.
    first = recording.arrival(lag + marks[0]) - controller._t0
    print(f"\nfirst sound at the sink {first * 1000:.0f} ms after start()")
    assert first < 0.5


@pytest.mark.playback
def test_real_pause_resume_skip_and_stop_fade(pulse_sink):
    from pulse import find_onset

    starts = [0, 4 * SR, 8 * SR]
    total = 12 * SR
    # A different tone-burst pattern per section, unique noise throughout.
    audio = noise(total, seed=9) * 0.5
    recorder = pulse_sink.record()
    controller = Controller(ArraySource(audio, sample_rate=SR, starts=starts))
    controller.start()
    _wait_for(lambda: controller.snapshot().position > SR)
    controller.pause()
    _wait_for(lambda: controller._mode == "paused")
    held = controller.snapshot().position
    # Stay paused while one second of audio passes through the sink (counted
    # in recorded samples, not slept); the place must hold meanwhile.
    heard = recorder.samples_so_far()
    _wait_for(lambda: recorder.samples_so_far() > heard + SR)
    assert controller.snapshot().position == held
    controller.resume()
    _wait_for(lambda: controller.snapshot().position > held + SR)
    controller.next_section()
    _wait_for(
        lambda: (
            controller.snapshot().section == 2 and controller.snapshot().position > starts[2] + SR
        )
    )
    stopped_from = controller.snapshot().position
    controller.stop()
    result = controller.wait(timeout=30)
    recording = recorder.stop().samples
    assert not result.completed and result.section == 2
    # Before the pause: the start of the session, then silence, then the same place again.
    a, match_a = find_onset(recording, audio[SR // 2 : SR])
    assert match_a > 0.999
    b, match_b = find_onset(recording, audio[held + SR // 2 : held + SR])
    assert match_b > 0.999
    gap = recording[a - SR // 2 + held : b - SR // 2]  # between the held place and its return
    assert len(gap) > 0.9 * SR, "the pause did not last"
    assert np.max(np.abs(gap)) < 1e-6, "the pause was not silent"
    # After skipping: section 3's audio, in order.
    c, match_c = find_onset(recording, audio[starts[2] + SR // 2 : starts[2] + SR])
    assert match_c > 0.999 and c > b
    # The stop faded out over about two seconds and then went quiet.
    end_of_sound = int(np.flatnonzero(np.abs(recording) > 1e-4)[-1])
    stop_at = c - SR // 2 + (result.position - starts[2]) - STOP_FADE
    assert abs(end_of_sound - (stop_at + STOP_FADE)) < SR // 20
    env = [
        np.sqrt(np.mean(recording[stop_at + k * SR // 4 : stop_at + (k + 1) * SR // 4] ** 2))
        for k in range(8)
    ]
    assert all(x > y for x, y in itertools.pairwise(env)), env
    assert stopped_from < result.position


def _wait_for(condition, timeout: float = 20.0) -> None:
    """Wait for a state of the player (not for time to pass)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the player never reached the expected state")
        time.sleep(0.01)
