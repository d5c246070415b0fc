"""Checksums of an index generation: recorded when it is written, verified when it is
loaded (as Lucene checks every segment file it opens).

Hashing a 1e6-chunk index (4.6 GB) takes about 3 s on two cores, more from a cold disk, so
a large index would make every start wait for it (the bench measures 1e5 and 1e6 chunks).
Above a size (``verify_background_mb``), only the records (manifest, documents, chunks) are verified
before the index serves; the vectors and keyword arrays are verified by a
:class:`BackgroundCheck` after load, which reports a mismatch to the assistant, and the
assistant rebuilds, as for damage found on load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from .checksums import file_sha256

log = logging.getLogger(__name__)

# The large files of a generation: their checks may wait until after load.
DEFERRABLE = ("vectors/", "keyword/")
IntegrityState = Literal["verified", "pending", "damaged"]


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of the generation in ``folder`` but its manifest."""
    return {path.relative_to(folder).as_posix(): file_sha256(path)
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != "manifest.json"}


def verify(folder: Path, expected: dict[str, str]) -> None:
    """OSError naming the first file whose content differs from what was written (an
    index written before checksums were recorded has none to check)."""
    for name, digest in expected.items():
        if file_sha256(folder / name) != digest:
            raise OSError(f"{name} does not match its checksum")


def split(folder: Path, expected: dict[str, str], background_bytes: int | None
          ) -> tuple[dict[str, str], dict[str, str]]:
    """``expected`` as (checked before the index serves, checked after): all before when
    the stored files total ``background_bytes`` or less (None: always)."""
    if background_bytes is None:
        return expected, {}
    total = sum((folder / name).stat().st_size for name in expected
                if (folder / name).is_file())  # a missing file fails the check now
    if total <= background_bytes:
        return expected, {}
    later = {name: digest for name, digest in expected.items()
             if name.startswith(DEFERRABLE) and (folder / name).is_file()}
    return {n: d for n, d in expected.items() if n not in later}, later


class BackgroundCheck:
    """The checks of a load that wait until the index serves, run in one thread.

    Searches made before it finishes run on the data as loaded: a damaged vector file
    can give poor results for that long (seconds to minutes), never a crash, and the
    index is rebuilt once the damage is found.
    """

    def __init__(self, folder: Path | None = None, expected: dict[str, str] | None = None
                 ) -> None:
        self.folder = folder
        self.expected = dict(expected or {})
        self.problem: str | None = None
        self._done = threading.Event()
        self._started = False
        if not self.expected:
            self._done.set()

    @property
    def state(self) -> IntegrityState:
        if self.problem is not None:
            return "damaged"
        return "verified" if self._done.is_set() else "pending"

    def start(self, on_damage: Callable[[str], None]) -> None:
        """Verify in a thread; on a mismatch log it and call ``on_damage(reason)``.
        Daemon: a process that exits first (a CLI question) does not wait for it."""
        if self._done.is_set() or self._started:
            return
        self._started = True
        threading.Thread(target=self._run, args=(on_damage,), name="index-verify",
                         daemon=True).start()

    def _run(self, on_damage: Callable[[str], None]) -> None:
        assert self.folder is not None
        try:
            verify(self.folder, self.expected)
        except OSError as exc:
            self.problem = (f"The index in {self.folder} is damaged ({exc}, found by the "
                            "check after load); it is being rebuilt.")
            log.error("%s", self.problem)
            try:
                on_damage(self.problem)
            except Exception:  # noqa: BLE001 - a thread has no caller to raise to
                log.exception("rebuilding the damaged index failed")
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the check (and any rebuild it started) finished within ``timeout``."""
        return self._done.wait(timeout)
