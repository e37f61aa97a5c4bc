"""Where each script was stopped, so `play --resume` continues from that section.

Positions live in `paths.state_dir()/positions.json`, one entry per script,
keyed by the script's id and a hash of its resolved path (two scripts with the
same id in different folders do not mix). Writes are atomic (a temporary file
in the same folder, then `os.replace`), so a crash never leaves half a file.
A missing or damaged file reads as "no positions": resuming is a convenience,
never a reason to fail.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from prtvoice import paths
from prtvoice.atomic import replace_small_file

FILE_NAME = "positions.json"


@dataclass(frozen=True)
class ResumePoint:
    """A stopped session: the section (0-based index and title) and frame it stopped at."""

    section: int
    title: str
    frame: int
    saved_at: float


def script_key(script_id: str, path: Path) -> str:
    """The key of one script: its id plus a short hash of its resolved path."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:12]
    return f"{script_id}-{digest}"


def positions_file() -> Path:
    return paths.state_dir() / FILE_NAME


def _read_all(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_all(file: Path, data: dict) -> None:
    replace_small_file(file, json.dumps(data, indent=1, sort_keys=True))


def save(script_id: str, path: Path, *, section: int, title: str, frame: int) -> None:
    """Remember where this script stopped (replaces what was remembered)."""
    file = positions_file()
    data = _read_all(file)
    data[script_key(script_id, path)] = {
        "section": int(section),
        "title": title,
        "frame": int(frame),
        "saved_at": time.time(),
    }
    _write_all(file, data)


def load(script_id: str, path: Path) -> ResumePoint | None:
    """Where this script stopped, or None."""
    entry = _read_all(positions_file()).get(script_key(script_id, path))
    if not isinstance(entry, dict):
        return None
    try:
        return ResumePoint(
            section=int(entry["section"]),
            title=str(entry.get("title", "")),
            frame=int(entry.get("frame", 0)),
            saved_at=float(entry.get("saved_at", 0.0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def clear(script_id: str, path: Path) -> None:
    """Forget this script's position (a finished session starts afresh next time)."""
    file = positions_file()
    data = _read_all(file)
    if data.pop(script_key(script_id, path), None) is not None:
        _write_all(file, data)


def resume_section(point: ResumePoint | None, titles: list[str]) -> int:
    """The section to continue from: the saved one, found again by title if the
    script was edited since; 0 when nothing fits."""
    if point is None:
        return 0
    if 0 <= point.section < len(titles) and titles[point.section] == point.title:
        return point.section
    if point.title in titles:
        return titles.index(point.title)
    return point.section if 0 <= point.section < len(titles) else 0
