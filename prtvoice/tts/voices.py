"""Choosing a voice: the calm default for a language, or the one a script names."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from prtvoice.errors import VoiceError
from prtvoice.tts.engine import VoiceInfo

# The calm variant: eSpeak NG's "steph" has no roughness, a narrow pitch range
# (166-200 Hz) and a tone filter that rolls off the treble, which measured the
# lowest spectral centroid and high-band energy of the natural-sounding variants
# (see notes/voice-choice.md). Appended to the language's own voice.
CALM_VARIANT = "steph"
DEFAULT_VOICES: dict[str, str] = {
    "en": "gmw/en-us",
    "de": "gmw/de",
    "es": "roa/es",
    "fr": "roa/fr",
    "it": "roa/it",
    "nl": "gmw/nl",
    "pt": "roa/pt",
}


def default_voice(voices: Sequence[VoiceInfo], language: str, *, variants: Sequence[str]) -> str:
    """The calm default voice id for `language` (a code like "en" or "pt-br")."""
    ids = {v.id for v in voices}
    wanted = DEFAULT_VOICES.get(language.lower())
    if wanted not in ids:
        code = language.lower()
        matches = [v.id for v in voices if code in v.languages or v.id.split("/")[-1] == code]
        matches = matches or [
            v.id
            for v in voices
            if any(lang.split("-")[0] == code.split("-")[0] for lang in v.languages)
        ]
        if not matches:
            raise VoiceError(f"no voice speaks the script's language {language!r}")
        wanted = matches[0]
    return f"{wanted}+{CALM_VARIANT}" if CALM_VARIANT in variants else wanted


def find_voice(voices: Sequence[VoiceInfo], name: str, *, variants: Sequence[str] = ()) -> str:
    """The id of the voice `name` asks for: an exact id, or a case-insensitive substring
    of an id or name; "+variant" may follow (eSpeak NG variants). VoiceError if unknown
    or ambiguous, with close matches."""
    base, plus, variant = name.partition("+")
    if plus:
        known = {v.lower(): v for v in variants}
        if variant.lower() not in known:
            close = difflib.get_close_matches(variant, list(variants), n=5, cutoff=0.5)
            raise VoiceError(_unknown(f"voice variant {variant!r}", close))
        return f"{find_voice(voices, base)}+{known[variant.lower()]}"
    wanted = name.strip().lower()
    for voice in voices:
        if voice.id.lower() == wanted:
            return voice.id
    # A name equal to a voice's name or its id's last part wins over looser matches.
    for voice in voices:
        if wanted in (voice.name.lower(), voice.id.lower().rsplit("/", 1)[-1]):
            return voice.id
    found = [v for v in voices if wanted in v.id.lower() or wanted in v.name.lower()]
    if len(found) == 1:
        return found[0].id
    if found:
        shown = ", ".join(f"{v.id} ({v.name})" for v in found[:8])
        raise VoiceError(f"voice {name!r} matches {len(found)} voices: {shown}; name one of them")
    names = [v.id for v in voices] + [v.name for v in voices]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    return_error = _unknown(f"voice {name!r}", close)
    raise VoiceError(return_error + " (`prtvoice voices` lists them)")


def _unknown(what: str, close: Sequence[str]) -> str:
    if close:
        return f"unknown {what}; did you mean {', '.join(close)}?"
    return f"unknown {what}"
