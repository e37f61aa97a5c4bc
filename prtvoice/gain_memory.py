"""The gain each script's last export settled on, so that a re-export needs one pass.

Normalising a session takes a measuring pass before the encoding pass, since
the gain depends on the whole session's loudness. But a script exported again
after an edit (a line reworded, a pause lengthened) lands within hundredths of
a LU of where it was: `export_plan` then encodes at once with the remembered
gain and limiter ceiling, measures what it sends, and keeps the file when it
meets the target; when it does not, it measures and encodes again as usual.

One small JSON file per (script, format, rate, targets) under the cache
folder. It is only a hint: a missing, damaged or stale entry costs a pass,
never a wrong file, and a folder that cannot be written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from prtvoice.atomic import replace_small_file


@dataclass(frozen=True)
class Recalled:
    """A remembered decision: the linear gain and the limiter's sample ceiling (None: none)."""

    gain_db: float
    limit_db: float | None


@dataclass(frozen=True)
class GainMemory:
    """Remembered gains in `folder` (the cache folder's `gains/`)."""

    folder: Path

    @staticmethod
    def key(
        *, script: str, fmt: str, sample_rate: int, loudness_lufs: float, true_peak_db: float
    ) -> str:
        """What makes two exports the same job: the script file and what the gain aims at."""
        text = json.dumps([script, fmt, sample_rate, loudness_lufs, true_peak_db])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def recall(self, key: str) -> Recalled | None:
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            gain = float(data["gain_db"])
            limit = data["limit_db"]
            limit = None if limit is None else float(limit)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not math.isfinite(gain) or (limit is not None and not math.isfinite(limit)):
            return None
        return Recalled(gain, limit)

    def remember(self, key: str, recalled: Recalled) -> None:
        text = json.dumps({"gain_db": recalled.gain_db, "limit_db": recalled.limit_db})
        with contextlib.suppress(OSError):  # a hint only: the next export measures twice
            replace_small_file(self.folder / f"{key}.json", text)
