"""A local PostgreSQL cluster for the Dagster instance and the two MLflow registries.

Used by `make dev-postgres`, the PostgreSQL tests (tests/postgres_cluster.py) and
bench/postgres_bench.py: `python -m resources.postgres_local start|stop|status|env --root DIR`.
It is PostgreSQL's own `initdb` + `pg_ctl` (Debian: /usr/lib/postgresql/<major>/bin;
`MLOPS_PG_BIN` names another folder), listening on 127.0.0.1 only, with its Unix socket
inside the cluster folder. PostgreSQL refuses to run as root, so under root the server runs
as the `postgres` OS user and the folder is handed to it. Logins use scram-sha-256 with a
generated password kept in the folder (mode 600): the same credentials-from-the-environment
path (`cluster.env()`) a shared server takes. psycopg2 is imported only where it connects.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resources.endpoint_ports import free_port

DATABASES = ("dagster", "mlflow_dev", "mlflow_prod")
SUPERUSER = "mlops"
OS_USER = "postgres"  # who runs the server when we are root
# A throwaway cluster trades crash safety for speed: nothing in it outlives the process.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresError(RuntimeError):
    """The cluster cannot be set up, started or reached; the message says why."""


def pg_bin() -> Path | None:
    """The folder with `initdb` and `pg_ctl`: MLOPS_PG_BIN, else the newest Debian
    /usr/lib/postgresql/<major>/bin, else wherever `pg_ctl` is on PATH; None if absent."""
    if configured := os.environ.get("MLOPS_PG_BIN"):
        return Path(configured) if (Path(configured) / "pg_ctl").exists() else None
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3])
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


@dataclass(frozen=True)
class LocalPostgres:
    """A running cluster: where it is and how to log in."""

    root: Path
    port: int
    password: str = field(repr=False)  # never in a test failure or a log line
    user: str = SUPERUSER
    host: str = "127.0.0.1"

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL without the password (libpq reads PGPASSWORD, see `env`)."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def env(self, dagster_db: str = "dagster", mlflow_prefix: str = "mlflow_") -> dict[str, str]:
        """What deploy/dagster-postgres.yaml and `MLOPS_MLFLOW_DB_URL` read."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dagster_db,
            "PGPASSWORD": self.password,
            "MLOPS_MLFLOW_DB_URL": self.url(mlflow_prefix + "{stage}"),
        }

    @contextlib.contextmanager
    def cursor(self, database: str = "postgres") -> Iterator[Any]:
        """A psycopg2 cursor on `database`, autocommit (CREATE DATABASE needs it)."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=database,
                                password=self.password, connect_timeout=10)  # fmt: skip
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def query(self, database: str, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        with self.cursor(database) as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []

    def create_databases(self, names: Sequence[str]) -> None:
        """Create each database that does not exist yet."""
        from psycopg2 import sql

        with self.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database")
            present = {row[0] for row in cur.fetchall()}
            for name in (n for n in names if n not in present):
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", OS_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout)[-2000:]
        raise PostgresError(f"{what} failed ({done.returncode}): {detail}")


def _hand_over(*paths: Path) -> None:
    """Under root, give these paths to the server's OS user (and check it can reach them)."""
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam(OS_USER)
    except KeyError as err:
        raise PostgresError(f"running as root needs an OS user {OS_USER!r} to run PostgreSQL "
                            "(the Debian package `postgresql` creates it)") from err  # fmt: skip
    for path in paths:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    if subprocess.run(_as_server_user(["test", "-w", str(paths[0])])).returncode != 0:
        raise PostgresError(f"the {OS_USER} OS user cannot write {paths[0]}: put the cluster "
                            "in a folder every user can enter (its parents need o+x)")  # fmt: skip


def _initdb(binaries: Path, root: Path, durable: bool) -> None:
    password = secrets.token_urlsafe(24)
    pwfile = root / "password"
    # created owner-only: never readable by others, not even between write and chmod
    with os.fdopen(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(password)
    _hand_over(root, pwfile)
    _run([str(binaries / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER,
          f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C",
          *([] if durable else ["--no-sync"])], "initdb")  # fmt: skip
    with (root / "data" / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'mlops.conf'\n")


def _write_settings(root: Path, port: int, durable: bool) -> None:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(root / "run"),
        **({} if durable else THROWAWAY_SETTINGS),
    }
    (root / "run").mkdir(exist_ok=True)
    (root / "data" / "mlops.conf").write_text(
        "".join(f"{key} = '{value}'\n" for key, value in settings.items())
    )
    (root / "cluster.json").write_text(json.dumps({"port": port, "user": SUPERUSER}))
    _hand_over(root / "run", root / "data" / "mlops.conf")


def is_running(root: Path) -> bool:
    binaries = pg_bin()
    if binaries is None or not (root / "data" / "PG_VERSION").exists():
        return False
    cmd = _as_server_user([str(binaries / "pg_ctl"), "status", "-D", str(root / "data")])
    return subprocess.run(cmd, capture_output=True).returncode == 0


def connection(root: Path) -> LocalPostgres:
    """The cluster in `root` as it was last started."""
    try:
        state = json.loads((root / "cluster.json").read_text())
        password = (root / "password").read_text().strip()
    except FileNotFoundError as err:
        raise PostgresError(f"no cluster in {root}: start one first") from err
    return LocalPostgres(root=root, port=int(state["port"]), password=password, user=state["user"])


def start(
    root: Path, port: int | None = None, databases: Sequence[str] = DATABASES, durable: bool = True
) -> LocalPostgres:
    """Create the cluster in `root` if needed, start it if stopped, create missing databases.

    `port=None` keeps the port it had, or picks a free one; a throwaway (`durable=False`)
    cluster runs without fsync."""
    binaries = pg_bin()
    if binaries is None:
        raise PostgresError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                            "`apt-get install postgresql`, or set MLOPS_PG_BIN")  # fmt: skip
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "data" / "PG_VERSION").exists():
        _initdb(binaries, root, durable)
    if not is_running(root):
        _start_server(binaries, root, port, durable)
    cluster = connection(root)
    cluster.create_databases(databases)
    return cluster


def _start_server(binaries: Path, root: Path, port: int | None, durable: bool) -> None:
    state = root / "cluster.json"
    kept = json.loads(state.read_text())["port"] if state.exists() else None
    for attempt in range(3):  # a free port can be taken before the server binds it
        _write_settings(root, port or kept or free_port(), durable)
        try:
            _run([str(binaries / "pg_ctl"), "start", "-D", str(root / "data"), "-w", "-t", "60",
                  "-l", str(root / "server.log")], "pg_ctl start")  # fmt: skip
            return
        except PostgresError as err:
            if port or attempt == 2:
                log = root / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else str(err)
                raise PostgresError(f"PostgreSQL did not start in {root}: {tail}") from None
            kept = None


def stop(root: Path) -> None:
    """Stop the cluster in `root` (fast shutdown: open sessions are ended); no-op if stopped."""
    binaries = pg_bin()
    if binaries is not None and is_running(root):
        _run([str(binaries / "pg_ctl"), "stop", "-D", str(root / "data"), "-m", "fast", "-w"],
             "pg_ctl stop")  # fmt: skip


@contextlib.contextmanager
def throwaway(
    databases: Sequence[str] = DATABASES, durable: bool = False
) -> Iterator[LocalPostgres]:
    """A cluster in a fresh temporary folder (where the `postgres` user can reach it),
    stopped and deleted afterwards; `durable` keeps fsync on, as a benchmark wants."""
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    try:
        yield start(root, databases=databases, durable=durable)
    finally:
        stop(root)  # raises if it cannot: then the data stays, under a live server
        shutil.rmtree(root, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """`start` and `env` print shell exports (password included) for `eval "$(...)"`."""
    parser = argparse.ArgumentParser(prog="python -m resources.postgres_local",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("action", choices=("start", "stop", "status", "env"))
    parser.add_argument("--root", type=Path, required=True, help="the cluster's folder")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (start; default: kept)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.action == "stop":
            stop(root)
        elif args.action == "status":
            print("running" if is_running(root) else "stopped")
            return 0 if is_running(root) else 3
        else:
            cluster = start(root, port=args.port) if args.action == "start" else connection(root)
            print("".join(f"export {k}='{v}'\n" for k, v in cluster.env().items()), end="")
            print(f"PostgreSQL on {cluster.host}:{cluster.port} in {root}", file=sys.stderr)
    except PostgresError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
