"""Run the scoring server: `python -m serving --config path.json --host 127.0.0.1 --port N`.

`--config` defaults to `$MLOPS_SERVING_CONFIG`. One process, one event loop
(uvloop and httptools when installed); scale out with more processes behind a load
balancer, each writing its own inference-log files. Exits with status 2 and a
one-line reason when the config or a model cannot be loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys

import uvicorn

from serving.app import create_app
from serving.scoring.model import ModelLoadError
from serving.settings import CONFIG_ENV, ConfigError, ServingSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV),
        help=f"serving config JSON (default: ${CONFIG_ENV})",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if not args.config:
        parser.error(f"give --config or set {CONFIG_ENV}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(ServingSettings.from_file(args.config))
    except (ConfigError, ModelLoadError) as exc:
        print(f"serving: {exc}", file=sys.stderr)
        return 2
    fast = {
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
    }
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        **fast,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
