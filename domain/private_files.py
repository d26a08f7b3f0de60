"""Files that hold personal data outside the lake (campaign hand-offs, access bundles): readable by their owner
only from the first byte, and whole or absent after a crash."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

STAGED_MARK = ".assay-staged-"


def remove_staged(folder: Path) -> int:
    """Delete the temporary files that a process killed inside `write_private` left under `folder` (hidden, and
    named by Assay: nobody else's files)."""
    stale = [p for p in Path(folder).rglob(f".*{STAGED_MARK}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


@contextmanager
def _staged(path: Path) -> Iterator[tuple[Path, BinaryIO]]:
    """A hidden temporary file beside `path`, created private (mode 600) and exclusively; gone afterwards unless
    the caller moved it into place."""
    staged = path.with_name(f".{path.name}{STAGED_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield staged, handle
    finally:
        staged.unlink(missing_ok=True)


def write_private(path: Path, write: Callable[[BinaryIO], object], mode: int = 0o600) -> Path:
    """Write `path` through `write(handle)`: into a hidden temporary file beside it, created private, then renamed
    over it, so a reader never sees half a file and nobody else can read it at any moment. `mode`: the file's
    final permissions (a rewritten file of the user's keeps its own)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _staged(path) as (staged, handle):
        write(handle)
        handle.close()
        if mode != 0o600:
            os.chmod(staged, mode)
        os.replace(staged, path)
    return path


def install_private(path: Path, data: bytes) -> bool:
    """Create `path` (mode 600) holding `data` only if it does not exist: the private temporary file is linked into
    place, which fails when another process got there first. Returns whether this call's file was installed."""
    with _staged(Path(path)) as (staged, handle):
        handle.write(data)
        handle.close()
        try:
            os.link(staged, path)
        except FileExistsError:
            return False
    return True
