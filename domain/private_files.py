"""Files that hold personal data outside the lake (campaign hand-offs, access bundles): readable by their owner
only from the first byte, and whole or absent after a crash."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
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


def write_private(path: Path, write: Callable[[BinaryIO], object], mode: int = 0o600) -> Path:
    """Write `path` through `write(handle)`: into a hidden temporary file beside it, created private, then renamed
    over it, so a reader never sees half a file and nobody else can read it at any moment. `mode`: the file's
    final permissions (a rewritten file of the user's keeps its own)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}{STAGED_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        if mode != 0o600:
            os.chmod(staged, mode)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path
