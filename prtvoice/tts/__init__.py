"""The voice layer: text-to-speech engines and the cached voice bank.

``make_engine(config)`` gives the user's engine; ``VoiceBank`` turns
(text, voice, language) into exact, cached clips for the planner and renderer.
"""

from prtvoice.tts.bank import Prefetch, VoiceBank
from prtvoice.tts.engine import Engine, VoiceInfo, make_engine

__all__ = ["Engine", "Prefetch", "VoiceBank", "VoiceInfo", "make_engine"]
