"""The synthesis worker process: ``python -m prtvoice.tts.worker``.

It speaks through pyttsx3's eSpeak NG binding (``pyttsx3.drivers._espeak``)
in eSpeak's synchronous mode, and forks one short-lived child per clip from
the freshly initialized engine. Why not pyttsx3's driver loop: in pyttsx3
2.99 ``runAndWait`` returns before ``save_to_file`` has written the file
(eSpeak runs asynchronously and the queued end-of-loop fires first), rate
changes get lost, the driver prints to stdout, and eSpeak's output depends
on what it said before (pitch flutter state). A child forked from the same
pristine state makes every clip depend only on its request, so clips are
identical whichever worker made them and in whatever order.

Protocol: one JSON object per line on stdin, one JSON reply per line on the
original stdout; fd 1 itself is pointed at /dev/null so that nothing a
library prints can corrupt the replies.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import wave
from pathlib import Path

ENGINE_RATE = 22050  # eSpeak NG's output rate


def _open_protocol():
    reply = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return reply


def _variants(data_path: str | None) -> list[str]:
    if not data_path:
        return []
    folder = Path(data_path) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


class Speaker:
    def __init__(self) -> None:
        from prtvoice.tts.espeak import load_espeak

        self.library = load_espeak()
        from pyttsx3.drivers import _espeak  # after load_espeak: it finds the right library

        self.espeak = _espeak
        rate = _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000)
        if rate != ENGINE_RATE:
            raise RuntimeError(f"eSpeak NG did not initialize (returned {rate})")
        self.chunks: list[bytes] = []
        self.voice: str | None = None  # loaded in this (parent) process
        self._callback = _espeak.SetSynthCallback(self._collect)
        data = ctypes.c_char_p()
        _espeak.dll.espeak_Info.restype = ctypes.c_char_p
        _espeak.dll.espeak_Info(ctypes.byref(data))
        self.data_path = data.value.decode() if data.value else self.library.data_path

    def _collect(self, wav, numsamples, events) -> int:
        if numsamples > 0:
            self.chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0

    def info(self) -> dict:
        from prtvoice.tts.espeak import pyttsx3_version

        voices = []
        for v in self.espeak.ListVoices(None):
            languages = v.languages[1:].decode("utf-8", "ignore") if v.languages else ""
            voices.append(
                {
                    "id": v.identifier.decode("utf-8").lower(),
                    "name": v.name.decode("utf-8"),
                    "languages": [languages] if languages else [],
                }
            )
        return {
            "pyttsx3": pyttsx3_version(),
            "espeak": self.library.version,
            "source": self.library.source,
            "library": self.library.path,
            "data_path": self.data_path,
            "voices": voices,
            "variants": _variants(self.data_path),
        }

    def load_voice(self, name: str) -> None:
        """Load a voice in the parent, so that each forked child finds it loaded.

        Loading a voice says nothing, so the parent stays pristine for speech
        (every clip still depends only on its request: checked byte for byte
        against a fresh worker in the tests); each child then skips reading the
        voice and its dictionary, about a third of a short clip's time. A name
        eSpeak does not know is left for the child to report.
        """
        if name != self.voice and self.espeak.SetVoiceByName(name.encode("utf-8")) == 0:
            self.voice = name

    def speak(self, request: dict) -> None:
        """In a forked child: write the clip to request["out"] or exit non-zero."""
        es = self.espeak
        if es.SetVoiceByName(request["voice"].encode("utf-8")) != 0:
            raise LookupError(f"eSpeak NG has no voice {request['voice']!r}")
        es.SetParameter(es.RATE, int(request["wpm"]), 0)
        es.SetParameter(es.VOLUME, int(request["volume"]), 0)
        self.chunks.clear()
        status = es.Synth(request["text"].encode("utf-8"), flags=es.ENDPAUSE | es.CHARS_UTF8)
        if status != 0:
            raise RuntimeError(f"eSpeak NG failed to synthesize (status {status})")
        data = b"".join(self.chunks)
        if not data:
            raise RuntimeError("eSpeak NG returned no audio")
        with wave.open(request["out"], "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(ENGINE_RATE)
            f.writeframes(data)


def _synthesize(speaker: Speaker, request: dict) -> dict:
    if not hasattr(os, "fork"):  # no fork (Windows): speak in place, clips may vary slightly
        speaker.speak(request)
        return {"ok": True}
    speaker.load_voice(request["voice"])
    error_path = request["out"] + ".err"
    pid = os.fork()
    if pid == 0:  # the child: speak from the pristine state, then leave at once
        code = 0
        try:
            speaker.speak(request)
        except LookupError as exc:
            Path(error_path).write_text(str(exc))
            code = 3
        except BaseException as exc:
            Path(error_path).write_text(f"{type(exc).__name__}: {exc}")
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return {"ok": True}
    try:
        message = Path(error_path).read_text()
        Path(error_path).unlink()
    except OSError:
        message = f"the synthesis process ended with status {code}"
    return {"ok": False, "error": message, "unknown_voice": code == 3}


def main() -> int:
    reply = _open_protocol()
    try:
        speaker = Speaker()
    except BaseException as exc:
        reply.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        return 1
    reply.write(json.dumps({"ok": True, "ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request.get("op") == "info":
                answer = {"ok": True, **speaker.info()}
            else:
                answer = _synthesize(speaker, request)
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        reply.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
