"""A real PostgreSQL server for the tests: Debian's package (`make system-packages`), a new cluster in a temporary
folder, on a free loopback port, password authentication over TCP. Stopped and deleted afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loopback import free_port

USER, PASSWORD, DATABASE = "assay", "assay-test-password", "dagster"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    def instance_env(self) -> dict[str, str]:
        """The variables `docker/dagster.yaml` reads its storage settings from."""
        return {"DAGSTER_PG_USER": self.user, "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_HOST": self.host,
                "DAGSTER_PG_DB": self.database, "DAGSTER_PG_PORT": str(self.port)}


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None



@contextmanager
def running_postgres() -> Iterator[Postgres]:
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server is installed: run `make system-packages` (Debian's postgresql)")
    # PostgreSQL refuses to run as root: as root, the cluster belongs to the package's `postgres` user. The folder
    # is under /tmp, which that user can reach (pytest's own temporary folders are private to root).
    folder = Path(tempfile.mkdtemp(prefix="assay-postgres-", dir="/tmp"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    password_file = folder / "password"
    password_file.write_text(PASSWORD)
    if run_as:
        shutil.chown(password_file, "postgres", "postgres")
    data, port = folder / "data", free_port()

    def run(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={password_file}",
            "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--no-sync")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off", "start")
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-d", "postgres", "-v",
                        "ON_ERROR_STOP=1", "-c", f"create database {DATABASE}"],
                       check=True, capture_output=True, text=True, env=env, timeout=60)
        yield Postgres("127.0.0.1", port, USER, PASSWORD, DATABASE)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
