"""Durations as therapists write them: `3s`, `750ms`, `1m30s`, `1h`, `90`.

Parsing and showing lengths for the loader's messages; no YAML here, so the
CLI and the config can use it too.
"""

from __future__ import annotations

import math
import re

from prtvoice.errors import InputError

_UNITS = {
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
}  # fmt: skip
NUMBER_PATTERN = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(rf"\s*({NUMBER_PATTERN})\s*([a-zA-Z]+)\s*")
_BARE_NUMBER = re.compile(rf"\s*({NUMBER_PATTERN})\s*")
DURATION_HINT = "write it like 5s, 750ms, 2m, 1m30s or 1h"


class DurationProblem(Exception):
    """A duration that does not read; `hint` says how to write one."""

    def __init__(self, message: str, hint: str | None = DURATION_HINT):
        super().__init__(message)
        self.message, self.hint = message, hint


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration: `3s`, `1.5s`, `750ms`, `2m`, `1m30s`, `1h5m`, `5 s`, `90`.

    A bare number is seconds; units go from large to small, each once
    (`1m30s`, not `30s1m`); long unit names (`min`, `sec`, `hours`) work too.
    Returns a finite float >= 0 (zero is allowed here: callers that need a
    length check for it). Raises InputError with a message a person can act
    on for anything else (negative, NaN, not a duration).
    """
    try:
        return seconds_of(text)
    except DurationProblem as problem:
        hint = f"; {problem.hint}" if problem.hint else ""
        raise InputError(problem.message + hint) from None


def seconds_of(text: object) -> float:
    """Like parse_duration, raising DurationProblem (the loader locates it)."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationProblem(f"{show(text)} is not a duration")
    if isinstance(text, (int, float)):
        try:
            seconds = float(text)
        except OverflowError:
            raise DurationProblem(f"{show(text)} seconds is far too long", None) from None
        if not math.isfinite(seconds):
            raise DurationProblem(f"{show(text)} is not a duration")
        if seconds < 0:
            raise DurationProblem(f"a duration cannot be negative: {show(text)}", None)
        return seconds
    stripped = text.strip()
    if stripped.startswith("-"):
        raise DurationProblem(f"a duration cannot be negative: {show(stripped)}", None)
    if stripped.startswith("+"):
        stripped = stripped[1:]
    bare = _BARE_NUMBER.fullmatch(stripped)
    if bare:
        return float(bare.group(1))
    total, position, last_scale = 0.0, 0, math.inf
    while position < len(stripped):
        part = _DURATION_PART.match(stripped, position)
        if not part or part.group(2).lower() not in _UNITS:
            raise DurationProblem(f"{show(stripped)} is not a duration")
        scale = _UNITS[part.group(2).lower()]
        if scale >= last_scale:
            raise DurationProblem(
                f"{show(stripped)} is not a duration",
                "write the units from large to small, each once, like 1h5m or 1m30s",
            )
        last_scale = scale
        total += float(part.group(1)) * scale
        position = part.end()
    if position == 0:
        raise DurationProblem("an empty text is not a duration")
    return total


def show(value: object) -> str:
    """A value quoted for a message, cut short: a hostile script may hold megabytes."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if not isinstance(value, str):
        return text
    return f"'{text}'" if text.isprintable() else repr(text)


def length_text(seconds: float) -> str:
    """Seconds as a person reads a length in a message: 90 s -> 1m30s."""
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds >= 1000 * 3600:
        return "over 1000h"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")
