"""`assay-dbt`: the dbt executable the Dagster dbt resource runs (its public `dbt_executable` setting).

dagster-dbt runs `<executable> --version` before every dbt invocation to learn which engine it talks to. With
dbt-core that is a whole dbt start (about 1.6 s on this machine), twice per weekly tick. This launcher answers
`--version` from the installed package's metadata, the same version dbt would print, and hands every other
command to the venv's dbt unchanged (exec: same process, arguments, environment and exit code).
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        print(f"Core:\n  - installed: {version('dbt-core')}")
        return
    dbt = Path(sys.executable).parent / "dbt"
    os.execv(dbt, [str(dbt), *args])
