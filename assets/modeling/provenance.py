"""What produced a model version: the modelling code and the dbt models, as hashes for its registry card."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

MODELING_DIR = Path(__file__).resolve().parent
REPO_ROOT = MODELING_DIR.parents[1]


def trainer_code_version() -> str:
    """Hash of the modelling code (and the git commit when there is one): what produced a version."""
    digest = hashlib.sha256()
    for path in sorted(MODELING_DIR.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    return code_version(digest.hexdigest()[:12], commit)


def code_version(source_hash: str, commit: str | None) -> str:
    """The version string of a source hash and a git commit. Each hash is joined to its label by a dash: a hex hash
    can be all digits (about one in 300 of 12 characters), and standing alone it would read as a phone number to
    the PII scan of the analyst views."""
    return f"src-{source_hash}" + (f" git-{commit}" if commit else "")


def dbt_manifest_hash(manifest_path: Path) -> str:
    """Hash of the dbt models' own checksums (the manifest's timestamps change on every parse, the SQL does not)."""
    if not manifest_path.exists():
        return "unknown"
    nodes = json.loads(manifest_path.read_text()).get("nodes", {})
    checksums = sorted((uid, node.get("checksum", {}).get("checksum", "")) for uid, node in nodes.items()
                       if node.get("resource_type") == "model")
    return hashlib.sha256(json.dumps(checksums).encode()).hexdigest()[:16]
