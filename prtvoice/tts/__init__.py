"""The voice layer: text-to-speech engines and the cached voice bank.

``make_engine(config)`` gives the user's engine; ``VoiceBank`` turns
(text, voice, language) into exact, cached clips for the planner and renderer.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: typing costs every speech worker ~10 ms
# of its start, and type checkers read this constant the same way.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from prtvoice.tts.bank import Prefetch, VoiceBank
    from prtvoice.tts.engine import Engine, VoiceInfo, make_engine

__all__ = ["Engine", "Prefetch", "VoiceBank", "VoiceInfo", "make_engine"]

_HOMES = {
    "Prefetch": "prtvoice.tts.bank",
    "VoiceBank": "prtvoice.tts.bank",
    "Engine": "prtvoice.tts.engine",
    "VoiceInfo": "prtvoice.tts.engine",
    "make_engine": "prtvoice.tts.engine",
}


def __getattr__(name: str):
    # Lazy (PEP 562): the speech worker process imports prtvoice.tts.espeak and
    # must not pay for the bank's numpy import (~0.2 s of every worker's start).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
