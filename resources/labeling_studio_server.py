"""A local Label Studio server, run from its own venv, for people (`make label-studio-start`)
and for the Label Studio backend's tests.

Label Studio pins its own Django and friends, so it lives in `.tools/label-studio-venv`
(`make label-studio` creates it and migrates `.tools/label-studio-data` once: the first
migration of its SQLite database takes a minute or more, later starts about 10 s; a start
on an unmigrated data dir migrates it first).
Constraints:
- Loopback only: it binds 127.0.0.1, and a busy port is an error, because Label Studio
  itself silently moves to the next free port.
- The first user and its API token come from the environment, as Label Studio reads them
  on start (LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN); legacy
  tokens (`Authorization: Token`) are enabled for the organization it creates.
- No network: Label Studio's PyPI version check is switched off.
- Ready means `/health` answers: `wait_ready` polls it with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".tools" / "label-studio-venv"
DATA_DIR = ROOT / ".tools" / "label-studio-data"
DATABASE = "label_studio.sqlite3"
CREDENTIALS = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")


def binary(venv: Path = VENV) -> Path:
    return venv / "bin" / "label-studio"


def server_env(data_dir: Path, credentials: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Label Studio starts with: ours, its data dir, the first user's
    credentials (from `credentials`, else already in ours), legacy tokens, no version check."""
    env = {**os.environ, **(credentials or {})}
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LATEST_VERSION_CHECK": "false",
        }
    )
    return env


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start(
    port: int,
    data_dir: Path = DATA_DIR,
    credentials: dict[str, str] | None = None,
    venv: Path = VENV,
    log: Path | None = None,
) -> subprocess.Popen:
    """Start Label Studio on 127.0.0.1:`port` in its own process group; returns the process."""
    if not binary(venv).exists():
        raise FileNotFoundError(f"no Label Studio at {binary(venv)}: run `make label-studio`")
    if not port_free(port):
        raise OSError(f"127.0.0.1:{port} is in use; Label Studio would move elsewhere unasked")
    cmd = [
        str(binary(venv)),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--host",
        f"http://127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
        "--enable-legacy-api-token",
    ]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        cmd,
        env=server_env(data_dir, credentials),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 240.0) -> None:
    """Poll `url`/health until it answers 200; fail early when the process exits."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.5)  # poll interval
    raise TimeoutError(f"Label Studio at {url} was not ready after {timeout_s:.0f}s")


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """End the server's process group (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("serve",))
    parser.parse_args(argv)
    missing = [name for name in CREDENTIALS if not os.environ.get(name)]
    if missing:  # Label Studio creates the API user only when they are set
        print(
            f"note: {', '.join(missing)} unset: no API user is created or updated now "
            "(fine when an earlier start made it)",
            file=sys.stderr,
        )
    port = int(os.environ.get("MLOPS_LABEL_STUDIO_PORT", "8080"))
    # SIGTERM (a supervisor, `kill`) stops the server too: the finally below runs on exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    proc = start(port)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        print(f"Label Studio on http://127.0.0.1:{port} (data: {DATA_DIR}); Ctrl-C stops it")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())
