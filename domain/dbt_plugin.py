"""The dbt-duckdb plugin that dbt's profile loads (dbt_project/profiles.yml, `plugins`): every cursor dbt opens is
given the run's DuckDB memory limit (`dbt_run_memory_limit`).

On each cursor, as dbt-duckdb applies the profile's own settings, because setting the limit again as each model and
test starts kept the demo's feature build about 90 MB lower than setting it once when the run starts, at the same
limit and speed (docs/performance.md, "The demo size"). Read from the environment when the cursor opens, not
written into the profile: a profile that differs from run to run (the weekly limit, the backfill's) makes dbt parse
the whole project again.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from domain.duckdb_setup import dbt_run_memory_limit


class Plugin(BasePlugin):
    def configure_cursor(self, cursor) -> None:
        cursor.execute(f"SET memory_limit = '{dbt_run_memory_limit(os.environ)}'")
