"""The play-while-planning session: a BlockSource that starts sounding at once.

`plan.plan_script` needs every clip's length, so it synthesizes the whole
script before the first sample; a listener would wait. `LiveSession` instead
lays the script out lazily with `plan.layout`, while the voice bank
synthesizes ahead in the background in order of first use, and renders blocks
with `render.render_events` as the events appear.

Timing is exact wherever it can be:

- Without a target duration every event lands exactly where `plan_script`
  would put it (the layout is the same function of the same clip lengths).
- With a target, each flexible pause is decided when the layout reaches it:
  it gets its cumulative share (`plan.share_out`'s rounding) of the flexible
  frames the target leaves, minus what the pauses before it actually got.
  Unknown speech is estimated from the characters times the frames per
  character of the clips known so far; once all is known the shares are
  exactly `plan_script`'s. The last flexible pause
  waits for the exact lengths of everything after it, so the session lands on
  the target to the sample once all is known; no pause is ever negative.
- `--only` plays one section; its flexible pauses keep the pacing the whole
  session would have (the scale estimated for the full target).

Seeking (`open(section)`) lays out again from that section, starting at the
section's frame on the session timeline (known if the layout already passed
it, estimated otherwise), so skipping ahead never waits for the synthesis of
the sections skipped.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from prtvoice.errors import PrtvoiceError
from prtvoice.names import DEFAULT_LANGUAGE, FLEX_MAX_SCALE, FLEX_MIN_SCALE
from prtvoice.options import Options
from prtvoice.plan import (
    Event,
    effective_voice,
    flat_steps,
    layout,
    phase_frames,
    speech_requests,
)
from prtvoice.render import render_events
from prtvoice.script import Breathe, Pause, Say, Script, Sound, VoiceSettings

# eSpeak NG at rate 1.0 speaks roughly 14 characters a second; only a first
# guess, replaced by the average of real clips as soon as one is known.
DEFAULT_FRAMES_PER_CHAR_SECONDS = 1 / 14
PREFETCH_AHEAD = 16  # clips synthesized ahead of the layout (a minute or more of speech)


class _SpeechStats:
    """Exact clip lengths as they become known, and a frames-per-character guess."""

    def __init__(self, voices: Any, sample_rate: int) -> None:
        self.voices = voices
        self.sample_rate = sample_rate
        self.known: dict[tuple[str, VoiceSettings, str], int] = {}
        self._chars = 0.0  # characters divided by rate: what speaking time scales with
        self._frames = 0
        self._lock = threading.Lock()
        self.on_layout = None  # told of every clip the layout asks for, in order

    def _note(self, key: tuple[str, VoiceSettings, str], frames: int) -> None:
        with self._lock:
            if key not in self.known:
                self.known[key] = frames
                self._chars += max(1, len(key[0])) / max(key[1].rate, 1e-3)
                self._frames += frames

    def frames(self, text: str, voice: VoiceSettings, language: str) -> int:
        """Exact length (blocks until synthesized): the layout's SpeechLengths."""
        key = (text, voice, language)
        if self.on_layout is not None:
            self.on_layout(key)
        found = self.known.get(key)
        if found is None:
            found = int(self.voices.frames(text, voice, language))
            self._note(key, found)
        return found

    def lookup(self, text: str, voice: VoiceSettings, language: str) -> int | None:
        """Exact length if already known (never blocks)."""
        key = (text, voice, language)
        found = self.known.get(key)
        if found is None:
            known = getattr(self.voices, "known_frames", None)
            found = known(text, voice, language) if known is not None else None
            if found is not None:
                self._note(key, int(found))
        return found

    def estimate(self, text: str, voice: VoiceSettings, language: str) -> int:
        """Exact length if known, else characters x the average frames per character."""
        found = self.lookup(text, voice, language)
        if found is not None:
            return found
        with self._lock:
            per_char = (
                self._frames / self._chars
                if self._chars
                else DEFAULT_FRAMES_PER_CHAR_SECONDS * self.sample_rate
            )
        return round(max(1, len(text)) / max(voice.rate, 1e-3) * per_char)


class LiveSession:
    """A script as a BlockSource for `player.Controller`, planned while it plays.

    `voices` is a VoiceBank (frames, known_frames, clip, prefetch_background);
    `sounds` a SoundBank. `target_seconds` overrides the script's `duration`.
    `only_section` plays that section alone. Safe to query (`describe`,
    `total_frames`, `section_start`) from another thread while it renders.
    """

    def __init__(
        self,
        script: Script,
        *,
        options: Options,
        voices: Any,
        sounds: Any,
        target_seconds: float | None = None,
        only_section: int | None = None,
    ) -> None:
        self.options = options
        self.sample_rate = options.sample_rate
        self.voices = voices
        self.sounds = sounds
        self.language = script.language or DEFAULT_LANGUAGE
        self.stats = _SpeechStats(voices, self.sample_rate)
        full = script
        target = target_seconds if target_seconds is not None else script.duration
        self.scale: float | None = None  # fixed flexible scale (--only), else None
        if only_section is not None:
            script = replace(script, sections=(script.sections[only_section],))
            if target_seconds is None and target is not None:
                self.scale = self._estimated_scale(full, target)
                target = None
        self.script = script
        self.target_frames = None if target is None else round(target * self.sample_rate)
        self._steps = list(flat_steps(script))
        self._nominals: list[int] = []
        self._flex_step: list[int] = []  # step index of each flexible pause
        for index, (_, step) in enumerate(self._steps):
            if isinstance(step, Pause) and step.flexible:
                self._nominals.append(round(step.seconds * self.sample_rate))
                self._flex_step.append(index)
        self._lock = threading.Lock()
        self._events: list[Event] = []  # laid out so far, in order, on the session timeline
        self._starts: list[int] = []
        self._section_starts: dict[int, int] = {0: 0}
        self._exhausted_at: int | None = None
        self._offset = 0
        self._window_lock = threading.Lock()
        self._handles: list = []
        self._requests: list = []  # the session's speech in order, listed as needed
        self._request_index: dict = {}
        self._unlisted: Iterator | None = None  # the requests not listed yet
        self._prefetched = 0
        self._prefetch_generation = 0
        self._kick: threading.Thread | None = None
        self._warmed: int | None = None  # section whose prefetch `warm` started
        self.stats.on_layout = self._laid_out
        self._warming_sounds = _WarmingSounds(sounds, self.sample_rate)
        self.flexible_given: dict[int, int] = {}  # flexible pause index -> frames chosen
        if self.target_frames is not None:
            self._check_target(from_cli=target_seconds is not None)

    def _check_target(self, *, from_cli: bool) -> None:
        """Refuse a target the session cannot meet, as `plan_script` would.

        Exact when every clip length is known (a warm cache); while some are
        only estimated, only a target missed by a wide margin is refused, so a
        guess never stops a session that would fit.
        """
        from prtvoice.plan import _fit

        known = unknown = 0  # frames of exact steps, and of speech only estimated
        for _, step in self._steps:
            if isinstance(step, Pause) and step.flexible:
                continue
            if isinstance(step, Say):
                voice = effective_voice(step.voice, self.options)
                found = self.stats.lookup(step.text, voice, self.language)
                if found is None:
                    unknown += self.stats.estimate(step.text, voice, self.language)
                    continue
            known += self._fixed_frames(step, exact=False)
        exact = unknown == 0
        fixed = known + unknown
        target = self.target_frames / self.sample_rate

        def fit(guess: int) -> None:
            _fit(
                self.script,
                fixed=guess,
                nominals=self._nominals,
                target=target,
                sr=self.sample_rate,
                from_cli=from_cli,
            )

        if exact or not self._nominals:
            fit(fixed)  # raises just as plan_script would
            return
        problems = []
        # Voices differ a lot in speed: half or twice the guess are still plausible.
        for guess in (fixed, known + unknown // 2, known + unknown * 2):
            try:
                fit(guess)
                return  # a plausible speech length fits
            except PrtvoiceError as exc:
                problems.append(exc)
        raise problems[0]

    # -- BlockSource ---------------------------------------------------------

    def section_titles(self) -> Sequence[str]:
        return [s.title for s in self.script.sections]

    def warm(self, section: int) -> None:
        """Start synthesizing the opening clips of `section` now, ahead of `open`,
        when the section opens with speech.

        The player opens its first section only once its stream exists; a
        caller that knows where playback starts calls this as soon as the
        session is built, so the first clip is made while the rest starts up.
        A section that opens with a sound (a bell: `warm_opening`) is left to
        `open`: its speech is not needed first, and making it early only slowed
        the first sound (2 h opening with a bell, cold: 0.65 -> 0.72 s).
        """
        steps = self.script.sections[section].steps if section < len(self.script.sections) else ()
        if steps and isinstance(steps[0], Sound):
            return
        self._start_prefetch(section)
        self._warmed = section

    def open(self, section: int) -> tuple[int, Iterator[np.ndarray]]:
        """Lay out and render from `section`'s start to the end of the session."""

        start = self.section_start(section)
        warmed, self._warmed = self._warmed, None
        if warmed != section:  # else `warm` already started this very window
            self._start_prefetch(section)
        with self._lock:
            keep = next(
                (i for i, e in enumerate(self._events) if e.section >= section), len(self._events)
            )
            del self._events[keep:]
            del self._starts[keep:]
            self._offset = start
            self._exhausted_at = None
            # This pass decides where the later sections start.
            for later in [k for k in self._section_starts if k > section]:
                del self._section_starts[later]
            self._section_starts[section] = start
        events = self._events_from(section, start)
        blocks = render_events(
            events,
            ambience=self.script.ambience,
            voices=self.voices,
            sounds=self._warming_sounds,
            options=self.options,
            language=self.language,
            total_frames=None,  # the session ends where its last event does
            start=start,
            # Known without any speech: the renderer needs not wait for clips
            # just to learn that the session outlasts its ambience fades.
            lasts_at_least=start + self._least_frames(section),
        )
        return start, blocks

    def _least_frames(self, section: int) -> int:
        """A lower bound of the frames from `section`'s start to the end: the
        pauses and breathing that need no synthesis (speech and sounds count 0)."""
        total = 0
        flex = 0
        for step_section, step in self._steps:
            flexible = isinstance(step, Pause) and step.flexible
            if step_section >= section:
                if flexible:
                    if self.scale is not None:
                        total += round(self._nominals[flex] * self.scale)
                    elif self.target_frames is None:
                        total += self._nominals[flex]
                    # with a target a flexible pause may shrink to nothing
                elif isinstance(step, (Pause, Breathe)):
                    total += self._fixed_frames(step, exact=False)
            flex += flexible
        return total

    def describe(self, frame: int) -> tuple[int, str | None]:
        with self._lock:
            index = bisect.bisect_right(self._starts, frame) - 1
            event = self._events[index] if index >= 0 else None
        if event is None:
            section = max((s for s, at in self._section_starts.items() if at <= frame), default=0)
            return section, None
        text = event.text if event.kind == "say" and frame < event.end else None
        return event.section, text

    def total_frames(self) -> int | None:
        if self.target_frames is not None:
            return self.target_frames
        if self._exhausted_at is not None:
            return self._exhausted_at
        return self.estimate_frames(0, len(self._steps))

    # -- timeline ---------------------------------------------------------------

    def section_start(self, section: int) -> int:
        """Where `section` starts: exact once laid out, estimated before."""
        known = self._section_starts.get(section)
        if known is not None:
            return known
        base_section = max(s for s in self._section_starts if s < section)
        base = self._section_starts[base_section]
        first = next(i for i, (s, _) in enumerate(self._steps) if s >= base_section)
        upto = next((i for i, (s, _) in enumerate(self._steps) if s >= section), len(self._steps))
        return base + self.estimate_frames(first, upto)

    def estimate_frames(self, first: int, upto: int) -> int:
        """Estimated length of steps [first, upto), flexible pauses at their scale."""
        total = 0
        flex = bisect.bisect_left(self._flex_step, first)
        scale = self._flex_scale_estimate()
        for index in range(first, upto):
            _, step = self._steps[index]
            if isinstance(step, Pause) and step.flexible:
                given = self.flexible_given.get(flex)
                total += given if given is not None else round(self._nominals[flex] * scale)
                flex += 1
            else:
                total += self._fixed_frames(step, exact=False)
        return total

    def _flex_scale_estimate(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.target_frames is None or not self._nominals:
            return 1.0
        fixed = sum(
            self._fixed_frames(step, exact=False)
            for _, step in self._steps
            if not (isinstance(step, Pause) and step.flexible)
        )
        return max(0.0, (self.target_frames - fixed) / sum(self._nominals))

    def _fixed_frames(self, step, *, exact: bool) -> int:
        sr = self.sample_rate
        if isinstance(step, Say):
            voice = effective_voice(step.voice, self.options)
            if exact:
                return self.stats.frames(step.text, voice, self.language)
            return self.stats.estimate(step.text, voice, self.language)
        if isinstance(step, Pause):
            return round(step.seconds * sr)
        if isinstance(step, Sound):
            return int(self.sounds.frames(step.sound))
        if isinstance(step, Breathe):
            return sum(length for _, length in phase_frames(step, sr))
        raise TypeError(f"unknown step {step!r}")  # pragma: no cover

    def _estimated_scale(self, script: Script, target: float) -> float:
        """The flexible scale the whole script would get at `target` (estimated)."""
        sr = self.sample_rate
        nominal = fixed = 0
        for _, step in flat_steps(script):
            if isinstance(step, Pause) and step.flexible:
                nominal += round(step.seconds * sr)
            else:
                fixed += self._fixed_frames(step, exact=False)
        if not nominal:
            return 1.0
        scale = (round(target * sr) - fixed) / nominal
        return min(FLEX_MAX_SCALE, max(FLEX_MIN_SCALE, scale))

    # -- lazy layout ------------------------------------------------------------

    def _flexible(self, index: int, nominal: int, position: int) -> int:
        """Frames for flexible pause `index` starting at `position` (layout-relative)."""
        if self.scale is not None:
            frames = round(nominal * self.scale)
        elif self.target_frames is None:
            frames = nominal
        else:
            # Aim at the cumulative share the exact plan would give pauses
            # 0..index (plan.share_out's cumulative rounding), minus what the
            # pauses before this one actually got. Once every length is known
            # this is exactly plan_script's share; while estimates are off, each
            # pause corrects the earlier ones, and the last lands on the target.
            at = self._offset + position
            last = index == len(self._nominals) - 1
            here = self._flex_step[index]
            fixed_before = fixed_after = 0
            for number, (_, step) in enumerate(self._steps):
                if isinstance(step, Pause) and step.flexible:
                    continue
                if number < here:
                    fixed_before += self._fixed_frames(step, exact=False)
                else:
                    fixed_after += self._fixed_frames(step, exact=last)
            flexible_total = max(0, self.target_frames - fixed_before - fixed_after)
            whole = sum(self._nominals)
            upto = sum(self._nominals[: index + 1]) * flexible_total // whole
            given_before = at - fixed_before
            if last:
                upto = self.target_frames - fixed_before - fixed_after  # exact by construction
            frames = max(0, upto - given_before)
        self.flexible_given[index] = frames
        return frames

    def _events_from(self, section: int, offset: int) -> Iterator[Event]:
        events = layout(
            self.script,
            options=self.options,
            speech=self.stats,
            sounds=self.sounds,
            flexible=self._flexible,
            start_section=section,
        )
        end = offset
        last_section = section
        for event in events:
            if offset:
                event = replace(event, start=event.start + offset)
            with self._lock:
                self._events.append(event)
                self._starts.append(event.start)
                # Sections with no events start where the next one does.
                while last_section < event.section:
                    last_section += 1
                    self._section_starts[last_section] = event.start
            end = event.end
            yield event
        with self._lock:
            while last_section < len(self.script.sections) - 1:
                last_section += 1
                self._section_starts[last_section] = end
        self._exhausted_at = end

    def _start_prefetch(self, section: int) -> None:
        """Synthesize ahead of the layout from `section`, a window of clips at a time.

        Only PREFETCH_AHEAD clips beyond the one being laid out are asked for:
        synthesizing a two-hour session at full speed would take both cores
        from the audio for minutes (measured: device underflows on a 2-core
        machine), while a window keeps well ahead of real time.
        """
        self._cancel_prefetch()
        rest = replace(self.script, sections=self.script.sections[section:])
        with self._window_lock:
            self._prefetch_generation += 1
            generation = self._prefetch_generation
            # Listed as the window needs them: a 2 h session has ~600 requests, and
            # listing them all first held up its first clip (~5 ms of the first sound).
            self._requests, self._request_index = [], {}
            self._unlisted = speech_requests(rest, self.options)
            self._prefetched = 0
        # In a thread of its own: starting a prefetch resolves voices, which on
        # a cold cache waits for the speech worker's voice list, and a session
        # that opens with a bell (or silence) must not wait for that to sound.
        self._kick = threading.Thread(
            target=self._prefetch_upto,
            args=(PREFETCH_AHEAD, generation),
            name="prtvoice-prefetch",
            daemon=True,
        )
        self._kick.start()

    def prefetch_started(self, timeout: float | None = None) -> bool:
        """Wait until the latest `open` has asked the voice bank for its first clips."""
        kick = self._kick
        if kick is not None:
            kick.join(timeout)
        return kick is None or not kick.is_alive()

    def _prefetch_upto(self, upto: int, generation: int | None = None) -> None:
        background = getattr(self.voices, "prefetch_background", None)
        with self._window_lock:
            if generation is not None and generation != self._prefetch_generation:
                return  # a newer open() started its own window
            if background is None or upto <= self._prefetched:
                return
            self._list_upto(upto)
            batch = self._requests[self._prefetched : upto]
            self._prefetched = max(self._prefetched, upto)
            if batch:
                try:
                    self._handles.append(background(batch))
                except PrtvoiceError:
                    if generation is None:
                        raise
                    # From the kick-off thread nobody would see it: forget the
                    # window, so the layout's own request raises it in order.
                    self._prefetched = 0

    def _list_upto(self, upto: int | None) -> None:
        """List the session's requests up to `upto` (None: all); holding _window_lock."""
        unlisted = self._unlisted
        while unlisted is not None and (upto is None or len(self._requests) < upto):
            request = next(unlisted, None)
            if request is None:
                self._unlisted = unlisted = None
                break
            self._request_index[request] = len(self._requests)
            self._requests.append(request)

    def _laid_out(self, key) -> None:
        """The layout reached this clip: keep the prefetch window ahead of it."""
        with self._window_lock:
            index = self._request_index.get(key)
            if index is None and self._unlisted is not None:
                self._list_upto(None)  # beyond the window: the layout ran ahead of it
                index = self._request_index.get(key)
        if index is not None and index + PREFETCH_AHEAD // 2 >= self._prefetched:
            self._prefetch_upto(index + PREFETCH_AHEAD)

    def _cancel_prefetch(self) -> None:
        with self._window_lock:
            handles, self._handles = self._handles, []
        for handle in handles:
            cancel = getattr(handle, "cancel", None)
            if cancel is not None:
                cancel()

    def close(self) -> None:
        """Stop synthesizing ahead."""
        with self._window_lock:
            self._prefetch_generation += 1  # a kick-off still under way starts nothing
        self._cancel_prefetch()


def warm_opening(script: Script, *, section: int, sounds: Any) -> None:
    """Start making the sound that opens `section` (a bell, typically) in the background.

    It is the first thing the player needs, and generating one takes ~0.1 s
    of numpy work that can run while the caller sets up the session; the
    sound bank hands the same clip to the renderer when it asks (its lock
    makes it wait for this one rather than make it twice). Errors are left
    for the renderer to raise in their place.
    """
    steps = script.sections[section].steps if 0 <= section < len(script.sections) else ()
    first = steps[0] if steps else None
    if not isinstance(first, Sound):
        return

    def make() -> None:
        with contextlib.suppress(Exception):  # raised again, in its place, by the renderer
            sounds.clip(first.sound)

    threading.Thread(target=make, name="prtvoice-opening", daemon=True).start()


class _LateBed:
    """An ambience bed that joins once it is ready instead of holding up the start.

    Making a bed can take seconds (generating and loudness-normalising the
    loop, or decoding a file), while the session must sound at once. Until
    the bed is ready its blocks are silent; when it arrives it fades in over
    JOIN_SECONDS, so it never enters with a click. From then on it is the
    bed itself, sample for sample. An error making it is raised by `block`.
    """

    JOIN_SECONDS = 0.5

    def __init__(self, make, sample_rate: int) -> None:
        self._bed = None
        self._error: BaseException | None = None
        self._joined_at: int | None = None
        self._join = max(1, round(self.JOIN_SECONDS * sample_rate))
        self._ready = threading.Event()

        def work() -> None:
            try:
                self._bed = make()
            except BaseException as exc:  # handed to the renderer's thread
                self._error = exc
            self._ready.set()

        threading.Thread(target=work, name="prtvoice-bed", daemon=True).start()

    def block(self, start: int, frames: int) -> np.ndarray:
        if self._error is not None:
            raise self._error
        if not self._ready.is_set() or self._bed is None:
            return np.zeros((frames, 1), dtype=np.float32)
        samples = self._bed.block(start, frames)
        if self._joined_at is None:
            self._joined_at = start
        into = start - self._joined_at
        if into < self._join:
            ramp = np.clip((into + np.arange(1, frames + 1)) / self._join, 0.0, 1.0)
            samples = samples * ramp.astype(np.float32)[:, None]
        return samples


class _WarmingSounds:
    """The sound bank as the renderer sees it, with beds that join late (_LateBed)."""

    def __init__(self, sounds: Any, sample_rate: int) -> None:
        self._sounds = sounds
        self.sample_rate = getattr(sounds, "sample_rate", sample_rate)
        self._beds: dict = {}

    def bed(self, ref):
        found = self._beds.get(ref)
        if found is None:
            found = self._beds[ref] = _LateBed(lambda: self._bed_bank().bed(ref), self.sample_rate)
        return found

    def _bed_bank(self):
        # A bank of its own for the bed: SoundBank holds its lock while it makes
        # a sound, and a bed must not hold up the session's first bell. Beds
        # are a pure function of (name or file, seed, rate): the same samples.
        try:
            return type(self._sounds)(
                sample_rate=self._sounds.sample_rate,
                seed=self._sounds.seed,
                max_file_seconds=self._sounds.max_file_seconds,
            )
        except (AttributeError, TypeError):  # another kind of bank: share it
            return self._sounds

    def __getattr__(self, name: str):
        return getattr(self._sounds, name)
