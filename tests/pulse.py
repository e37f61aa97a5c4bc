"""A private PulseAudio server with a null sink, and a recorder of its monitor.

Used by the `pulse_sink` fixture in conftest.py. The server runs in its own
XDG_RUNTIME_DIR with an anonymous unix socket; clients in this process reach it
through PULSE_SERVER (PortAudio -> ALSA `default`/`pulse` -> libpulse), and
subprocesses inherit it. The monitor of an idle null sink delivers little or
nothing, so a "keeper" stream plays digital silence into the sink all the
time: the monitor then delivers continuously and promptly (measured: the first
loud sample arrives ~12 ms after a client starts playing, against 0.3-1.7 s
from an idle sink). Mixing zeros changes no sample. Timings come from the
audio itself (onsets found by cross-correlation) and from when recorded chunks
arrived, never from sleeps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SINK = "prtvoice_test"
RATE = 44100


class PulseSink:
    """A pulseaudio daemon (started by us, stopped by its own pid) with one null sink."""

    def __init__(self) -> None:
        self.runtime = Path(tempfile.mkdtemp(prefix="prtvoice-pulse-"))
        self.socket = self.runtime / "native"
        self.server = f"unix:{self.socket}"
        self.process: subprocess.Popen | None = None
        self.keeper: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to play into (and record from) this sink."""
        return {"PULSE_SERVER": self.server, "PULSE_SINK": SINK, "PULSE_SOURCE": f"{SINK}.monitor"}

    def start(self) -> PulseSink:
        pulseaudio = shutil.which("pulseaudio")
        if pulseaudio is None:
            raise RuntimeError("pulseaudio is not installed (apt install pulseaudio)")
        env = {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(self.runtime)}
        self.process = subprocess.Popen(
            [
                pulseaudio, "--daemonize=no", "--system=no", "--exit-idle-time=-1",
                "--use-pid-file=no", "--disable-shm=yes", "-n", "--log-target=stderr",
                f"--load=module-null-sink sink_name={SINK} rate={RATE} channels=1 format=float32le",
                f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "pulseaudio exited: " + self.process.stderr.read().decode(errors="replace")
                )
            done = subprocess.run(
                ["pactl", "--server", self.server, "set-default-sink", SINK],
                capture_output=True,
            )
            if done.returncode == 0:
                self._keep_running()
                return self
            time.sleep(0.05)  # waiting for a server to come up, not timing audio
        self.stop()
        raise RuntimeError("pulseaudio did not come up within 15 s")

    def _keep_running(self) -> None:
        with open("/dev/zero", "rb") as zeros:
            self.keeper = subprocess.Popen(
                [
                    "pacat", "--server", self.server, "--playback", "--raw",
                    "--format=float32le", f"--rate={RATE}", "--channels=1",
                    "--latency-msec=20", f"--device={SINK}",
                ],
                stdin=zeros, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def stop(self) -> None:
        if self.keeper is not None and self.keeper.poll() is None:
            self.keeper.terminate()
            self.keeper.wait(timeout=5)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.runtime, ignore_errors=True)

    def record(self) -> Recorder:
        """Start recording the sink's monitor (mono float32 at 44.1 kHz)."""
        return Recorder(self).start()


@dataclass
class Recording:
    """What the monitor delivered, and when each chunk arrived (perf_counter)."""

    samples: np.ndarray
    chunk_ends: list[tuple[float, int]] = field(default_factory=list)  # (time, samples so far)

    def arrival(self, index: int) -> float:
        """perf_counter time by which sample `index` had arrived (an upper bound)."""
        for when, upto in self.chunk_ends:
            if upto > index:
                return when
        raise IndexError(index)

    def first_sound(self, threshold: float = 1e-4) -> int | None:
        loud = np.flatnonzero(np.abs(self.samples) > threshold)
        return int(loud[0]) if len(loud) else None

    def last_sound(self, threshold: float = 1e-4) -> int | None:
        loud = np.flatnonzero(np.abs(self.samples) > threshold)
        return int(loud[-1]) if len(loud) else None


class Recorder:
    """parec on the monitor, read by a thread that notes when each chunk arrived."""

    def __init__(self, sink: PulseSink) -> None:
        self.sink = sink
        self._chunks: list[bytes] = []
        self._ends: list[tuple[float, int]] = []
        self._process: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Recorder:
        self._process = subprocess.Popen(
            [
                "parec", "--server", self.sink.server, "-d", f"{SINK}.monitor",
                "--format=float32le", f"--rate={RATE}", "--channels=1", "--raw",
                "--latency-msec=10",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        # The keeper keeps the monitor flowing, so the recording is live once
        # the first chunk arrives: only then can it not miss what we play next.
        deadline = time.monotonic() + 10
        while not self._ends:
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("parec delivered nothing from the monitor within 10 s")
            time.sleep(0.01)  # polling for the recorder to come up, not timing audio
        return self

    def _read(self) -> None:
        total = 0
        stream = self._process.stdout
        while True:
            data = stream.read1(65536)
            if not data:
                return
            self._chunks.append(data)
            total += len(data)
            self._ends.append((time.perf_counter(), total // 4))

    def so_far(self) -> np.ndarray:
        """What has been recorded up to now (the recording goes on)."""
        data = b"".join(list(self._chunks))
        return np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").copy()

    def samples_so_far(self) -> int:
        return self._ends[-1][1] if self._ends else 0

    def stop(self, settle: float = 0.6) -> Recording:
        """Stop once `settle` seconds more of audio arrived: what was played has
        passed through the sink's buffers (counted in samples, not waited in time)."""
        wanted = self.samples_so_far() + round(settle * RATE)
        deadline = time.monotonic() + 10 + settle
        while self.samples_so_far() < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        self._process.terminate()
        self._process.wait(timeout=5)
        self._thread.join(timeout=5)
        data = b"".join(self._chunks)
        samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").copy()
        return Recording(samples, list(self._ends))


def find_onset(recording: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Where `reference` starts inside `recording` (lag in samples) and how well it matches.

    The match is the normalized correlation at that lag (1.0: identical).
    """
    from scipy.signal import correlate

    corr = correlate(recording, reference, mode="valid", method="fft")
    lag = int(np.argmax(corr))
    window = recording[lag : lag + len(reference)]
    norm = float(np.linalg.norm(window) * np.linalg.norm(reference)) or 1.0
    return lag, float(np.dot(window, reference) / norm)
