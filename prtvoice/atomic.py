"""Atomic file writing: a target is either its old self or the complete new file.

Work happens in a hidden partial file beside the target
(`.NAME.partial-PID-TOKEN`, same folder, so the final rename never crosses a
file system). Only a finished, fsynced file is renamed onto the target.

- An exception (including KeyboardInterrupt, and SIGTERM inside
  `sigterm_raises()`) removes the partial file; the target is untouched.
- A SIGKILL cannot be caught: its partial file stays, but the target is still
  untouched, and the next write to the same target removes partial files whose
  process id is no longer running.
- Without `replace`, the new file is linked into place with `os.link`, which
  fails if the target appeared meanwhile: of two exports racing to the same
  new target, the second refuses (OutputExistsError) instead of overwriting.
  With `replace` (--force), `os.replace` makes the last one to finish win,
  atomically.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from prtvoice.errors import EncoderError, Interrupted, OutputExistsError

_MARK = ".partial-"


def partial_prefix(target: Path) -> str:
    return f".{target.name}{_MARK}"


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove partial files of `target` left by processes that are gone; returns them."""
    removed = []
    folder = target.parent
    if not folder.is_dir():
        return removed
    prefix = partial_prefix(target)
    for path in folder.glob(f"{prefix}*"):
        pid_text = path.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue  # not a name we make
        pid = int(pid_text)
        if pid == os.getpid() or _pid_running(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def check_target(target: Path, *, force: bool) -> None:
    """Before any work: the target may be written (OutputExistsError, EncoderError)."""
    if target.is_dir():
        raise EncoderError(f"{target} is a folder; give a file name with -o")
    if target.exists() and not force:
        raise OutputExistsError(f"{target} exists; use --force to replace it")
    folder = target.parent
    if not folder.is_dir():
        raise EncoderError(f"cannot write {target}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EncoderError(f"cannot write {target}: the folder {folder} is not writable")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some systems cannot open folders.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class AtomicFile:
    """A partial file that becomes `target` on `commit()`; removed on any failure.

    Use as a context manager; write to `.partial` (by path: ffmpeg and mutagen
    open it themselves), then call `commit()` inside the block.
    """

    def __init__(self, target: Path, *, replace: bool):
        self.target = Path(target)
        self.replace = replace
        self.partial = self.target.parent / (
            f"{partial_prefix(self.target)}{os.getpid()}-{secrets.token_hex(4)}"
        )
        self.committed = False

    def __enter__(self) -> AtomicFile:
        remove_stale_partials(self.target)
        try:
            # O_EXCL reserves the name; the owner alone may read it (private until done).
            fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except OSError as exc:
            raise EncoderError(f"cannot write in {self.target.parent}: {exc.strerror}") from exc
        return self

    def commit(self) -> None:
        """fsync the finished partial file and move it onto the target atomically."""
        try:
            fd = os.open(self.partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(self.partial, 0o666 & ~_umask())
            if self.replace:
                os.replace(self.partial, self.target)
            else:
                self._link_new()
        except OutputExistsError:
            raise
        except OSError as exc:
            raise EncoderError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
        _fsync_dir(self.target.parent)
        self.committed = True

    def _link_new(self) -> None:
        try:
            os.link(self.partial, self.target)
        except FileExistsError:
            raise OutputExistsError(
                f"{self.target} appeared while exporting; use --force to replace it"
            ) from None
        except OSError as exc:
            if exc.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EXDEV,
                errno.EMLINK,
            ):
                raise
            # File systems without hard links (FAT on SD cards): check, then rename.
            if self.target.exists():
                raise OutputExistsError(
                    f"{self.target} exists; use --force to replace it"
                ) from None
            os.replace(self.partial, self.target)
            return
        os.unlink(self.partial)

    def __exit__(self, kind, value, traceback) -> None:
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: Path, text: str, *, replace: bool) -> None:
    """Write a small UTF-8 text file atomically (transcripts, playlists)."""
    with AtomicFile(target, replace=replace) as out:
        try:
            out.partial.write_text(text, encoding="utf-8", newline="\n")
        except OSError as exc:
            raise EncoderError(f"cannot write {target}: {exc.strerror or exc}") from exc
        out.commit()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block, SIGTERM raises Interrupted (so cleanup code runs).

    Does nothing outside the main thread (Python only delivers signals there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted("stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def replace_small_file(path: Path, text: str, *, durable: bool = True) -> None:
    """Write a small settings or state file whole: temp file, fsync, os.replace.

    For files that prtvoice alone owns (config, resume positions, voice lists):
    the last writer wins and a reader never sees half a file. Creates the
    folder. OSError propagates: the caller knows what the file is for.
    durable=False skips the fsync, for a cache whose reader copes with a file
    a crash left empty (an fsync took up to 30 ms here, on the way to a sound).
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
