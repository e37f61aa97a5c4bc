"""Plan -> PCM: a stream of float32 blocks at the session rate.

What a caller may rely on:

- blocks are float32, shape (frames, 1), `options.block_frames` long except
  the last, and together cover [start, end) of the session exactly;
- every event's sound starts on the event's first sample and stays inside its
  span (a voice cue longer than its phase is cut with a short fade);
- the samples are a pure function of (events, clips, options): rendering twice,
  in pieces (any `start`), or with any block size gives identical samples,
  because every envelope (ambience fades, ducking, tone chunks) is computed
  from absolute positions and looked up, never accumulated across blocks;
- memory is that of one block plus the clips of the few events around it,
  whatever the session's length;
- nothing exceeds ±1.0: headroom is kept by construction (speech under 1.0,
  cues and beds scaled well below it) and np.clip is only a last guard.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from prtvoice.errors import InputError
from prtvoice.names import BUILTIN_SOUNDS
from prtvoice.options import Options
from prtvoice.plan import Event, Plan
from prtvoice.script import Ambience, SoundRef, VoiceSettings
from prtvoice.sounds import SoundBank
from prtvoice.synth import TONE_CHUNK

DEFAULT_AMBIENCE_DB = -30.0  # a bed chosen on the command line for a script without one
DUCK_RAMP_SECONDS = 0.3  # ambience glides down before speech and back up after it
DUCK_HOLD_SECONDS = 1.0  # and stays down this long after it: no pumping between sentences
SPEECH_EDGE_SECONDS = 0.005  # fades on every speech clip: no click at a clip's edge
CUE_CUT_SECONDS = 0.02  # a voice cue cut at its phase's end fades out over this
# Breathing cue words sit 3 dB under the narration: a gentle prompt, and room
# for the tone that may sound with them (speech peaks up to ~0.9 + tone ~0.11).
CUE_VOICE_GAIN = 10 ** (-3 / 20)


class Voices(Protocol):
    """What the renderer needs of a voice bank (prtvoice.tts.VoiceBank)."""

    def clip(self, text: str, voice: VoiceSettings, language: str) -> np.ndarray: ...


def resolve_ambience(ambience: Ambience | None, *, options: Options) -> Ambience | None:
    """The bed to play: the script's, unless `options.ambience` overrides it.

    `options.ambience` is None (keep the script's), "off", a built-in sound
    name, or a path to an audio file (the listener's own, so not sandboxed).
    The script's level is kept when only the sound changes; a script without
    ambience gets DEFAULT_AMBIENCE_DB. Idempotent. InputError for an unknown name.
    """
    choice = options.ambience
    if choice is None:
        return ambience
    name = choice.strip()
    if name.lower() == "off":
        return None
    if name.lower() in BUILTIN_SOUNDS:
        sound = SoundRef(name.lower())
    elif Path(name).expanduser().is_file():
        path = Path(name).expanduser().resolve()
        sound = SoundRef(path.name, path)
    else:
        import difflib

        close = difflib.get_close_matches(name.lower(), BUILTIN_SOUNDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(
            f"unknown ambience {choice!r}{hint}: use off, a sound file, or one of "
            + ", ".join(BUILTIN_SOUNDS)
        )
    if ambience is not None:
        if ambience.sound == sound:
            return ambience
        return Ambience(sound, ambience.gain, ambience.where)
    return Ambience(sound, 10 ** (DEFAULT_AMBIENCE_DB / 20), None)  # type: ignore[arg-type]


def render(
    plan: Plan,
    *,
    voices: Voices,
    sounds: SoundBank,
    options: Options,
    start: int = 0,
    end: int | None = None,
    gain: float = 1.0,
) -> Iterator[np.ndarray]:
    """Blocks covering [start, end) of the planned session (end None: to its end)."""
    if plan.sample_rate != options.sample_rate:
        raise ValueError(
            f"the plan is at {plan.sample_rate} Hz but options say {options.sample_rate} Hz"
        )
    end = plan.frames if end is None else end
    if not 0 <= start <= end <= plan.frames:
        raise ValueError(f"cannot render [{start}, {end}) of a {plan.frames}-frame plan")
    return _Renderer(
        iter(plan.events),
        ambience=plan.ambience,
        voices=voices,
        sounds=sounds,
        options=options,
        language=plan.language,
        total_frames=plan.frames,
        gain=gain,
    ).blocks(start, end)


def render_events(
    events: Iterable[Event],
    *,
    ambience: Ambience | None,
    voices: Voices,
    sounds: SoundBank,
    options: Options,
    language: str,
    total_frames: int | None,
    start: int = 0,
    gain: float = 1.0,
    lasts_at_least: int = 0,
) -> Iterator[np.ndarray]:
    """The same as `render`, from a lazy, ordered event stream.

    The stream is read only as far as a block needs: the events that overlap
    it, and with ambience the speech it ducks for (DUCK_RAMP_SECONDS on).
    With `total_frames` None the session ends where the last event ends, so
    with ambience the stream is also read up to a fade beyond the block (the
    bed fades out on the session's last sample, and a session shorter than
    two fades shortens them) unless `lasts_at_least` (frames: a lower bound
    of the session's end the caller knows) already tells.
    """
    if start < 0 or (total_frames is not None and start > total_frames):
        raise ValueError(f"cannot start rendering at frame {start}")
    return _Renderer(
        iter(events),
        ambience=ambience,
        voices=voices,
        sounds=sounds,
        options=options,
        language=language,
        total_frames=total_frames,
        gain=gain,
        lasts_at_least=lasts_at_least,
    ).blocks(start, total_frames)


def _ramp(frames: int) -> np.ndarray:
    """A raised-cosine rise of `frames` values strictly between 0 and 1, as float32."""
    steps = np.arange(1, frames + 1) / (frames + 1)
    return (0.5 - 0.5 * np.cos(np.pi * steps)).astype(np.float32)


class _Renderer:
    """One pass over an event stream; `blocks()` is the only entry."""

    def __init__(
        self,
        events: Iterator[Event],
        *,
        ambience: Ambience | None,
        voices: Voices,
        sounds: SoundBank,
        options: Options,
        language: str,
        total_frames: int | None,
        gain: float,
        lasts_at_least: int = 0,
    ):
        if sounds.sample_rate != options.sample_rate:
            raise ValueError("the sound bank and the options disagree on the sample rate")
        if options.block_frames <= 0:
            raise ValueError("options.block_frames must be positive")
        self.events = events
        self.voices = voices
        self.sounds = sounds
        self.options = options
        self.language = language
        self.total = total_frames
        self.gain = np.float32(gain)
        sr = options.sample_rate
        self.ambience = resolve_ambience(ambience, options=options)
        self.bed = self.sounds.bed(self.ambience.sound) if self.ambience else None
        self.bed_gain = np.float32(self.ambience.gain) if self.ambience else np.float32(0)
        self.fade = max(0, round(options.fade_seconds * sr))
        self.duck_depth = np.float32(1 - 10 ** (-max(0.0, options.duck_db) / 20))
        self.ramp_frames = max(1, round(DUCK_RAMP_SECONDS * sr))
        self.hold_frames = max(0, round(DUCK_HOLD_SECONDS * sr))
        self.duck_ramp = _ramp(self.ramp_frames)
        self.release = self.hold_frames + self.ramp_frames  # a say's duck outlasts it by this
        self.speech_edge = round(SPEECH_EDGE_SECONDS * sr)
        self.cue_cut = round(CUE_CUT_SECONDS * sr)
        self.lasts_at_least = max(0, lasts_at_least if total_frames is None else total_frames)
        self.window: deque[Event] = deque()
        self.exhausted = False
        self.last_end = 0
        self.prepared: dict[Event, np.ndarray] = {}
        self._fade_lut: np.ndarray | None = None
        self._fade_len = -1

    # -- the event window ----------------------------------------------------

    def _fill(self, upto: int) -> None:
        """Pull events until one ends at or past `upto`, or the stream ends."""
        while not self.exhausted and self.last_end < upto:
            event = next(self.events, None)
            if event is None:
                self.exhausted = True
                break
            if event.start < self.last_end:
                raise ValueError(f"events overlap or are out of order at frame {event.start}")
            self.window.append(event)
            self.last_end = event.end

    def _needed(self, b1: int) -> int:
        """How far the events must be known to render a block ending at `b1`.

        Only as far as the block's samples depend on: a player waits for
        every clip in that span before its first sound.
        """
        if self.bed is None:
            return b1  # the events that overlap the block
        needed = b1 + self.ramp_frames if self.duck_depth else b1  # speech ducked for
        if self.fade and self.total is None:
            # Whether the session ends within a fade of the block (the fade-out
            # would begin in it), and while in the opening fade whether it lasts
            # two fades (a short session shortens both fades).
            ends = max(b1, self.fade) + self.fade
            if ends > self.lasts_at_least:
                needed = max(needed, ends)
        return needed

    def _prune(self, before: int) -> None:
        """Forget events that can no longer sound (nor duck the bed) at or after `before`."""
        while self.window and self.window[0].end + self.release <= before:
            self.prepared.pop(self.window.popleft(), None)

    def _session_end(self) -> int | None:
        if self.total is not None:
            return self.total
        return self.last_end if self.exhausted else None

    # -- blocks ----------------------------------------------------------------

    def blocks(self, start: int, stop: int | None) -> Iterator[np.ndarray]:
        size = self.options.block_frames
        position = start
        while True:
            self._fill(self._needed(position + size))
            end = stop if stop is not None else self._session_end()
            limit = position + size if end is None else min(position + size, end)
            if limit <= position:
                return
            self._prune(position)
            yield self._block(position, limit)
            position = limit

    def _block(self, b0: int, b1: int) -> np.ndarray:
        n = b1 - b0
        out = np.zeros(n, dtype=np.float32)
        for event in self.window:
            if event.start >= b1:
                break
            if event.end > b0:
                self._add_event(out, event, b0, b1)
        if self.bed is not None:
            envelope = self._envelope(b0, b1)
            bed = self.bed.block(b0, n)[:, 0]
            if envelope is None:
                out += bed * self.bed_gain
            else:
                out += bed * (self.bed_gain * envelope)
        if self.gain != 1:
            out *= self.gain
        np.clip(out, -1.0, 1.0, out=out)
        return out.reshape(-1, 1)

    # -- event sounds ---------------------------------------------------------

    def _add_event(self, out: np.ndarray, event: Event, b0: int, b1: int) -> None:
        lo, hi = max(b0, event.start), min(b1, event.end)
        if event.kind in ("inhale", "exhale") and event.tone:
            self._add_tone(out, event, lo, hi, b0)
        if event.kind in ("say", "sound") or event.text is not None:
            samples = self.prepared.get(event)
            if samples is None:
                samples = self._prepare(event)
                self.prepared[event] = samples
            a, b = lo - event.start, min(hi - event.start, len(samples))
            if b > a:
                out[lo - b0 : lo - b0 + (b - a)] += samples[a:b]

    def _prepare(self, event: Event) -> np.ndarray:
        """The clip an event plays, fitted inside its span, with click-free edges."""
        if event.kind == "sound":
            clip = self.sounds.clip(event.sound)[:, 0]
            if len(clip) > event.length:  # the plan came from another bank: stay inside
                return _fade_out(clip[: event.length], self.cue_cut)
            return clip
        voice = event.voice if event.voice is not None else VoiceSettings()
        clip = np.asarray(self.voices.clip(event.text, voice, self.language), dtype=np.float32)
        clip = clip.reshape(-1)
        edge = self.speech_edge
        if len(clip) > event.length:
            # A cue word longer than its phase never pushes the next phase late.
            clip = clip[: event.length]
            edge_out = self.cue_cut if event.kind != "say" else edge
        else:
            edge_out = edge
        clip = clip * np.float32(CUE_VOICE_GAIN) if event.kind != "say" else clip.copy()
        fade_in = min(edge, len(clip))
        if fade_in:
            clip[:fade_in] *= _ramp(fade_in)
        return _fade_out(clip, edge_out)

    def _add_tone(self, out: np.ndarray, event: Event, lo: int, hi: int, b0: int) -> None:
        # Chunks on a fixed grid from the phase start: the same samples whatever the blocks.
        a, b = lo - event.start, hi - event.start
        for index in range(a // TONE_CHUNK, (b - 1) // TONE_CHUNK + 1):
            chunk = self.sounds.breath_tone_chunk(event.kind, event.length, index)
            c0 = index * TONE_CHUNK
            s, e = max(a, c0), min(b, c0 + len(chunk))
            if e > s:
                out[event.start + s - b0 : event.start + e - b0] += chunk[s - c0 : e - c0]

    # -- ambience envelope ----------------------------------------------------------

    def _envelope(self, b0: int, b1: int) -> np.ndarray | None:
        """Fade × duck for [b0, b1), or None where both are exactly 1."""
        envelope: np.ndarray | None = None
        fade = self._fades(b0, b1)
        if fade is not None:
            envelope = fade
        duck = self._duck(b0, b1)
        if duck is not None:
            envelope = duck if envelope is None else envelope * duck
        return envelope

    def _fade_table(self, length: int) -> np.ndarray:
        if length != self._fade_len:
            self._fade_lut = (
                (0.5 - 0.5 * np.cos(np.pi * np.arange(length) / length)).astype(np.float32)
                if length
                else np.zeros(0, np.float32)
            )
            self._fade_len = length
        assert self._fade_lut is not None
        return self._fade_lut

    def _fades(self, b0: int, b1: int) -> np.ndarray | None:
        end = self._session_end()
        length = self.fade if end is None else min(self.fade, end // 2)
        if length <= 0:
            return None
        table = self._fade_table(length)
        positions = np.arange(b0, b1)
        result: np.ndarray | None = None
        if b0 < length:
            result = np.ones(b1 - b0, dtype=np.float32)
            inside = positions < length
            result[inside] = table[positions[inside]]
        if end is not None and b1 > end - length:
            if result is None:
                result = np.ones(b1 - b0, dtype=np.float32)
            inside = (positions >= end - length) & (positions < end)
            # Mirrored: the session's last sample has the bed at exactly 0.
            result[inside] *= table[end - 1 - positions[inside]]
        return result

    def _duck(self, b0: int, b1: int) -> np.ndarray | None:
        if self.duck_depth == 0:
            return None
        ramp, r = self.duck_ramp, self.ramp_frames
        hold = self.hold_frames
        amount: np.ndarray | None = None
        for event in self.window:
            if event.start - r >= b1:
                break
            if event.kind != "say" or event.end + hold + r <= b0:
                continue
            if amount is None:
                amount = np.zeros(b1 - b0, dtype=np.float32)
            # Down over r frames before the speech, held until `hold` after it, up over r.
            released = event.end + hold
            positions = np.arange(max(b0, event.start - r), min(b1, released + r))
            shape = np.ones(len(positions), dtype=np.float32)
            rising = positions < event.start
            shape[rising] = ramp[positions[rising] - (event.start - r)]
            falling = positions >= released
            shape[falling] = ramp[released + r - 1 - positions[falling]]
            # The deeper of overlapping ramps: two close sentences keep the bed down.
            view = amount[positions[0] - b0 : positions[-1] - b0 + 1]
            np.maximum(view, shape, out=view)
        if amount is None:
            return None
        return np.float32(1) - self.duck_depth * amount


def _fade_out(clip: np.ndarray, frames: int) -> np.ndarray:
    """`clip` (1-D float32) ending in a raised-cosine fade of `frames` (copy)."""
    clip = np.array(clip, dtype=np.float32)
    frames = min(frames, len(clip))
    if frames:
        clip[len(clip) - frames :] *= _ramp(frames)[::-1]
    return clip
