"""Single-key input from a terminal, for eyes-closed control of a session.

`KeyReader` puts the terminal in a raw input mode (no line buffering, no
echo, Ctrl-C arrives as a key instead of a signal) and always restores it on
exit. Output processing is left on, so status lines still print normally.
`parse_keys` turns the bytes read into key names; `dispatch` maps a key name
to a Controller command. Nothing here prints.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from typing import IO, Protocol

# Escape sequences of the keys we use (normal and "application cursor" mode).
_SEQUENCES: dict[bytes, str] = {
    b"\x1b[A": "up",
    b"\x1b[B": "down",
    b"\x1b[C": "right",
    b"\x1b[D": "left",
    b"\x1bOA": "up",
    b"\x1bOB": "down",
    b"\x1bOC": "right",
    b"\x1bOD": "left",
}
_SINGLE: dict[bytes, str] = {
    b" ": "space",
    b"\x03": "ctrl-c",
    b"\x04": "ctrl-d",
    b"\r": "enter",
    b"\n": "enter",
    b"\x1b": "escape",
}

HELP = "space pause/resume · ←/→ section · ↑/↓ volume · q stop"


def parse_keys(data: bytes) -> list[str]:
    """Key names in `data`: 'space', 'up', 'down', 'left', 'right', 'ctrl-c', a letter, ...

    Unknown escape sequences are skipped whole; printable characters come back
    lower-cased (so Q and q are the same key).
    """
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i : i + 1] == b"\x1b" and i + 1 < len(data) and data[i + 1 : i + 2] in b"[O":
            for sequence, name in _SEQUENCES.items():
                if data.startswith(sequence, i):
                    keys.append(name)
                    i += len(sequence)
                    break
            else:
                # Skip an unknown CSI sequence: parameters, then one final byte.
                j = i + 2
                while j < len(data) and 0x30 <= data[j] <= 0x3F:
                    j += 1
                i = j + 1
            continue
        byte = data[i : i + 1]
        if byte in _SINGLE:
            keys.append(_SINGLE[byte])
        elif 0x20 < data[i] < 0x7F:
            keys.append(byte.decode().lower())
        i += 1
    return keys


class Commands(Protocol):
    """The Controller methods the keys drive."""

    def toggle(self) -> None: ...
    def next_section(self) -> None: ...
    def previous_section(self) -> None: ...
    def volume_up(self) -> None: ...
    def volume_down(self) -> None: ...
    def stop(self, *, fade: bool = True) -> None: ...


def dispatch(key: str, controller: Commands) -> bool:
    """Apply one key to the controller; False when the key ends the session."""
    if key in ("space", "p", "k"):
        controller.toggle()
    elif key in ("right", "n", "l"):
        controller.next_section()
    elif key in ("left", "b", "h"):
        controller.previous_section()
    elif key in ("up", "+", "="):
        controller.volume_up()
    elif key in ("down", "-", "_"):
        controller.volume_down()
    elif key in ("q", "ctrl-c", "ctrl-d", "escape"):
        controller.stop(fade=True)
        return False
    return True


class KeyReader:
    """Reads keys from a terminal without Enter; a context manager that restores it.

    Usable only when `stream` is a terminal (see `is_terminal`). `read(timeout)`
    returns the keys pressed within `timeout` seconds (possibly none).
    """

    def __init__(self, stream: IO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin
        self.fd = self.stream.fileno()
        self._saved: list | None = None

    @staticmethod
    def is_terminal(stream: IO | None = None) -> bool:
        stream = stream if stream is not None else sys.stdin
        try:
            return stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    def __enter__(self) -> KeyReader:
        import termios

        self._saved = termios.tcgetattr(self.fd)
        mode = termios.tcgetattr(self.fd)
        # Raw input (like tty.setraw) but output left as it is, so "\n" still
        # returns the carriage and the status line draws normally.
        mode[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        mode[6] = list(mode[6])
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, mode)
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the terminal back as it was (idempotent)."""
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSAFLUSH, self._saved)
            self._saved = None

    def read(self, timeout: float) -> list[str]:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.fd, 64)
        if not data:  # the terminal went away: treat as a stop
            return ["ctrl-d"]
        return parse_keys(data)

    def keys(self, timeout: float = 0.1) -> Iterator[list[str]]:
        """Endless batches of keys, one batch per `timeout` at most."""
        while True:
            yield self.read(timeout)
