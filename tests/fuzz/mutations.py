"""Mutations that turn a script into broken, hostile or odd YAML.

Each mutator takes the document (bytes) and a `random.Random` and returns new
bytes. They work on text lines where YAML structure matters (indentation, keys,
values) and on raw bytes where the reader matters (flips, NULs, bad UTF-8).
`mutate()` applies one to a few of them, so damage compounds the way a bad
copy-paste or a hostile author would make it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Mutator = Callable[[bytes, random.Random], bytes]

# Words the format knows: renaming a key to one of these keeps the damage subtle.
KEYS = (
    "prtvoice", "title", "id", "kind", "summary", "language", "duration", "voice",
    "ambience", "variables", "sections", "steps", "say", "pause", "sound", "breathe",
    "repeat", "include", "pattern", "cycles", "for", "cue", "text", "name", "rate",
    "volume", "level",
)  # fmt: skip
TYPOS = ("Title", "sectons", "stpes", "sya", "paus", "bretahe", "", " ", "-", "?", "<<", "say say")

# Values a hostile or careless author might write anywhere.
VALUES = (
    "1e999", "-1e999", ".nan", ".inf", "-.inf", "-5s", "0", "0s", "-0", "1" * 5000, "9" * 30,
    "99999999999999999999h", "1h1h", "4h1s", "3600.0001s", "0x7fffffffffffffff", "0o777",
    "1_000_000", "[]", "{}", "null", "~", "true", "no", "2024-02-31", "2024-01-01 10:00:00",
    "'", '"', "|", ">", "&", "*", "!", "%", "@", "`", "{n}", "{count}", "{{", "}}", "{x",
    "[2s]", "[-1s]", "[1e9s]", "[2s~]", "box", "4-7-8", "4-2-6-0-9", "tone", "both", "1000",
    "1001", "100000", "x" * 6000, "bell", "chime", "brown-noise", "-300dB", "+6dB", "200%",
)  # fmt: skip

# Where an include or a sound might try to reach.
PATHS = (
    "/etc/passwd", "../../../../etc/passwd", "../" * 12 + "etc/shadow", "/dev/zero",
    "/dev/urandom", "/proc/self/mem", "/proc/self/environ", "~/.ssh/id_rsa", "~root/x",
    "C:\\Windows\\win.ini", "\\\\server\\share\\x.yaml", "file:///etc/passwd",
    "parts/../../x.yaml", "parts/./../../../x", "out-link.yaml", "dev-link.wav", "pipe.yaml",
    "folder.yaml", "fuzz.yaml", "parts", ".", "..", "", " ", "a\\..\\..\\b", "%2e%2e/x",
    "corrupt.wav", "sounds/click.wav", "empty.wav", "huge-header.wav", "library-tone.wav",
    "x" * 5000, "parts/opening.yaml", "parts/closing.yaml", "good-all-steps.yaml",
)  # fmt: skip

# Tags that would build objects or run code in an unsafe loader, and odd ones.
TAGS = (
    "!!python/object:os.system", "!!python/object/apply:os.system", "!!python/name:os.system",
    "!!python/object/new:subprocess.Popen", "!!python/module:os", "!!binary", "!!set",
    "!!omap", "!!pairs", "!!merge", "!!str", "!!int", "!!float", "!!bool", "!!null",
    "!!timestamp", "!custom", "!", "!<tag:yaml.org,2002:python/tuple>", "!!seq", "!!map",
)  # fmt: skip

# Unicode and control characters that break readers or hide content.
JUNK = (
    "\u202e", "\u200b", "\ufeff", "\ufffe", "\uffff", "\u0085", "\u2028", "\u2029", "\x7f",
    "\x1b[2J", "\r", "\r\n", "\t", "\x0b", "\x0c", "😀", "ﷺ", "𝕏", "\u0301" * 50, "\x00",
)  # fmt: skip
BAD_BYTES = (b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\x00")


def _lines(doc: bytes) -> list[bytes]:
    return doc.split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


def byte_flip(doc: bytes, rng: random.Random) -> bytes:
    if not doc:
        return bytes([rng.randrange(256)])
    data = bytearray(doc)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        data[at] = data[at] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return bytes(data)


def printable_flip(doc: bytes, rng: random.Random) -> bytes:
    """Replace a few bytes with YAML punctuation: damage the parser notices."""
    if not doc:
        return doc
    data = bytearray(doc)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] = ord(rng.choice(":-[]{}&*!|>'\"#%@`, ?\t\n"))
    return bytes(data)


def delete_lines(doc: bytes, rng: random.Random) -> bytes:
    lines = _lines(doc)
    for _ in range(rng.randint(1, 3)):
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
    return _join(lines)


def duplicate_lines(doc: bytes, rng: random.Random) -> bytes:
    lines = _lines(doc)
    at = rng.randrange(len(lines))
    span = lines[at : at + rng.randint(1, 6)]
    copies = rng.choice((1, 1, 2, 50))
    lines[at:at] = span * copies
    return _join(lines)


def swap_lines(doc: bytes, rng: random.Random) -> bytes:
    lines = _lines(doc)
    if len(lines) > 1:
        a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[a], lines[b] = lines[b], lines[a]
    return _join(lines)


def truncate(doc: bytes, rng: random.Random) -> bytes:
    return doc[: rng.randrange(len(doc) + 1)]


def reindent(doc: bytes, rng: random.Random) -> bytes:
    lines = _lines(doc)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(lines))
        line = lines[at]
        choice = rng.randrange(4)
        if choice == 0:
            lines[at] = b" " * rng.randint(1, 4) + line
        elif choice == 1:
            lines[at] = line[min(len(line) - len(line.lstrip()), rng.randint(1, 4)) :]
        elif choice == 2:
            lines[at] = b"\t" + line.lstrip()
        else:  # shift a whole block, as a bad paste does
            for i in range(at, min(len(lines), at + rng.randint(2, 20))):
                lines[i] = b"  " + lines[i]
    return _join(lines)


_KEY = re.compile(rb"^(\s*(?:-\s+)?)([A-Za-z_][\w-]*)(\s*:)", re.M)


def rename_key(doc: bytes, rng: random.Random) -> bytes:
    found = list(_KEY.finditer(doc))
    if not found:
        return doc
    match = rng.choice(found)
    new = rng.choice(KEYS + TYPOS).encode()
    return doc[: match.start(2)] + new + doc[match.end(2) :]


_VALUE = re.compile(rb"^(\s*(?:-\s+)?[A-Za-z_][\w-]*\s*:[ \t]+)(\S[^\n]*)$", re.M)


def swap_values(doc: bytes, rng: random.Random) -> bytes:
    found = list(_VALUE.finditer(doc))
    if len(found) < 2:
        return doc
    a, b = sorted(rng.sample(found, 2), key=lambda m: m.start())
    va, vb = a.group(2), b.group(2)
    return doc[: a.start(2)] + vb + doc[a.end(2) : b.start(2)] + va + doc[b.end(2) :]


def replace_value(doc: bytes, rng: random.Random) -> bytes:
    found = list(_VALUE.finditer(doc))
    if not found:
        return doc
    match = rng.choice(found)
    value = rng.choice(VALUES)
    if rng.random() < 0.3:
        value = repr(value) if rng.random() < 0.5 else f'"{value}"'
    return doc[: match.start(2)] + value.encode("utf-8", "surrogatepass") + doc[match.end(2) :]


def anchors_and_aliases(doc: bytes, rng: random.Random) -> bytes:
    found = list(_VALUE.finditer(doc))
    choice = rng.randrange(4)
    if choice == 0 and len(found) >= 2:
        # Anchor one value, alias it at another (a forward alias is an error too).
        a, b = rng.sample(found, 2)
        name = b"a" + str(rng.randrange(5)).encode()
        edits = sorted([(a.start(2), b"&" + name + b" "), (b.start(2), b"*" + name + b" #")])
        out = doc
        for at, text in reversed(edits):
            out = out[:at] + text + out[at:]
        return out
    if choice == 1:
        # A billion-laughs head, aliased from a step.
        width, depth = rng.randint(2, 12), rng.randint(2, 12)
        bomb = [b"x0: &x0 [" + b",".join([b"lol"] * width) + b"]"]
        for i in range(1, depth):
            bomb.append(
                f"x{i}: &x{i} [".encode() + b",".join([f"*x{i - 1}".encode()] * width) + b"]"
            )
        alias = f"*x{depth - 1}".encode()
        return _join(bomb) + b"\n" + doc.replace(b"say: ", b"say: " + alias + b" #", 1)
    if choice == 2:
        return doc + b"\n" + rng.choice((b"*nowhere", b"&a &b x", b"&", b"*", b"<<: *a"))
    # A merge key pulling a mapping in.
    return b"base: &base {title: X}\n" + doc.replace(b"title:", b"<<: *base\n  title:", 1)


def insert_tag(doc: bytes, rng: random.Random) -> bytes:
    found = list(_VALUE.finditer(doc))
    tag = rng.choice(TAGS).encode()
    if not found or rng.random() < 0.2:
        payload = rng.choice((b' ["touch /tmp/prtvoice-pwned"]', b" {}", b" x", b""))
        return doc + b"\nevil: " + tag + payload + b"\n"
    match = rng.choice(found)
    return doc[: match.start(2)] + tag + b" " + doc[match.start(2) :]


def huge_number(doc: bytes, rng: random.Random) -> bytes:
    found = list(_VALUE.finditer(doc))
    number = rng.choice(
        (
            "9" * rng.randint(20, 6000),
            "1e" + str(rng.randint(300, 99999)),
            "-" + "9" * 50,
            "0." + "0" * 400 + "1",
            str(2**63),
            str(2**64 + 1) + "ms",
            "4h0m1s",
            "1" * 30 + "s",
        )
    ).encode()
    if not found:
        return doc + b"\nduration: " + number
    match = rng.choice(found)
    return doc[: match.start(2)] + number + doc[match.end(2) :]


def deep_nesting(doc: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((10, 63, 64, 65, 200, 5000))
    kind = rng.randrange(4)
    if kind == 0:
        nest = b"[" * depth + b"x" + b"]" * depth
    elif kind == 1:
        nest = b"{a: " * depth + b"x" + b"}" * depth
    elif kind == 2:
        nest = b"\n".join(b"  " * i + b"- repeat: 2\n" + b"  " * i + b"  steps:" for i in range(
            min(depth, 60)))  # fmt: skip
        return doc.replace(b"steps:", b"steps:\n" + nest, 1)
    else:
        nest = b"[" * depth  # unclosed
    found = list(_VALUE.finditer(doc))
    if not found:
        return doc + b"\nx: " + nest
    match = rng.choice(found)
    return doc[: match.start(2)] + nest + doc[match.end(2) :]


def unicode_junk(doc: bytes, rng: random.Random) -> bytes:
    data = doc
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(data) + 1)
        piece = rng.choice(JUNK).encode("utf-8") if rng.random() < 0.6 else rng.choice(BAD_BYTES)
        data = data[:at] + piece + data[at:]
    return data


def nul_bytes(doc: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(doc) + 1)
    return doc[:at] + b"\x00" * rng.randint(1, 4) + doc[at:]


def hostile_paths(doc: bytes, rng: random.Random) -> bytes:
    path = rng.choice(PATHS).encode()
    step = rng.choice((b"include", b"sound"))
    if rng.random() < 0.3:
        path = b'"' + path.replace(b"\\", b"\\\\") + b'"'
    line = b"      - " + step + b": " + path
    if rng.random() < 0.3:
        return doc + b"\nambience: " + path
    if b"steps:" in doc:
        return doc.replace(b"steps:\n", b"steps:\n" + line + b"\n", 1)
    return doc + b"\nsections: [{title: A, steps: [{" + step + b": " + path + b"}]}]"


def big_counts(doc: bytes, rng: random.Random) -> bytes:
    """Push the limits: repeats, cycles, long texts, long sessions."""
    choice = rng.randrange(5)
    if choice == 0:
        count = rng.choice((999, 1000, 1001, 10**9))
        block = f"      - repeat: {count}\n        steps: [{{say: round {{n}}}}, {{pause: 1s}}]\n"
    elif choice == 1:
        block = f"      - breathe: {{pattern: box, cycles: {rng.choice((1000, 1001, 10**6))}}}\n"
    elif choice == 2:
        block = f"      - say: {'word ' * rng.choice((999, 1000, 1001, 3000))}\n"
    elif choice == 3:
        block = "      - repeat: 300\n        steps: [{pause: 59m}]\n"
    else:
        block = "      - repeat: 1000\n        steps: [{repeat: 1000, steps: [{sound: bell}]}]\n"
    if b"steps:\n" in doc:
        return doc.replace(b"steps:\n", b"steps:\n" + block.encode(), 1)
    return doc + b"\n" + block.encode()


MUTATORS: tuple[Mutator, ...] = (
    byte_flip, printable_flip, delete_lines, duplicate_lines, swap_lines, truncate, reindent,
    rename_key, swap_values, replace_value, anchors_and_aliases, insert_tag, huge_number,
    deep_nesting, unicode_junk, nul_bytes, hostile_paths, big_counts,
)  # fmt: skip


def splice(a: bytes, b: bytes, rng: random.Random) -> bytes:
    """The head of one document on the tail of another (cross-over)."""
    la, lb = _lines(a), _lines(b)
    return _join(la[: rng.randrange(len(la) + 1)] + lb[rng.randrange(len(lb) + 1) :])


def mutate(
    doc: bytes, rng: random.Random, *, corpus: list[bytes] | None = None
) -> tuple[bytes, list[str]]:
    """One to four mutations of `doc`; returns the result and the mutators' names."""
    applied = []
    if corpus and rng.random() < 0.1:
        doc = splice(doc, rng.choice(corpus), rng)
        applied.append("splice")
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        mutator = rng.choice(MUTATORS)
        doc = mutator(doc, rng)
        applied.append(mutator.__name__)
    return doc, applied


def random_document(rng: random.Random) -> bytes:
    """A random YAML-ish document built from the format's words and punctuation."""
    tokens = [
        *KEYS, *VALUES[:40], *PATHS[:10], *TAGS[:6], ":", ": ", "- ", "\n", "\n  ", "\n    ",
        "[", "]", "{", "}", ",", "&a ", "*a", "#", "---\n", "...\n", "? ", "|\n  ", ">-\n  ",
    ]  # fmt: skip
    size = rng.randint(0, 120)
    text = "".join(rng.choice(tokens) for _ in range(size))
    if rng.random() < 0.5:
        text = "prtvoice: 1\ntitle: T\nkind: custom\nsections:\n  - title: A\n    steps:\n" + text
    return text.encode("utf-8", "surrogatepass")
