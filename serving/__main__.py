"""Run the scoring server: `python -m serving --config path.json --host 127.0.0.1 --port N`.

`--config` defaults to `$MLOPS_SERVING_CONFIG`. One process, one event loop
(uvloop and httptools when installed). Exits with status 2 and a one-line reason
when the config or a model cannot be loaded. Slow clients are cut off by the
config's header and body deadlines (`serving.guard`, `serving.body`).

Scale out on one host with `--reuse-port`: every worker process binds its own
listening socket to the same (host, port) with SO_REUSEPORT and the kernel spreads
new connections over them. Each worker writes its own inference-log file. With
`--admin-port M` a worker also listens on a port of its own, so a control plane can
reach that one process (`/health`, `/metrics`, `POST /-/reload`) although the
shared port answers from whichever worker the kernel picked.

Scale in is SIGTERM. With `--reuse-port` the worker drains instead of dropping work:
1. it accepts what the kernel already queued on its listener, then closes the
   listener, so new connections go to the other workers (a SYN landing in the
   microseconds between the last accept and the close is the only one reset);
2. every response from then on carries `Connection: close`, so keep-alive clients
   finish their current request and reconnect to another worker;
3. after `--drain-s` (or sooner, once no connection is left) uvicorn's own graceful
   shutdown closes idle connections and waits for requests in flight (10 s at most).
A client that sends on a connection idle for the whole drain window in the very
instant it is closed can still see a reset, as with any keep-alive timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import uvicorn

from serving.app import create_app
from serving.guard import guarded_protocol
from serving.scoring.model import ModelLoadError
from serving.settings import CONFIG_ENV, ConfigError, ServingSettings

_log = logging.getLogger("serving")
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


class DrainGate:
    """ASGI wrapper: once `draining`, every response asks its client to close the connection."""

    def __init__(self, app: Callable[[Message, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.draining = False

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if self.draining and message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose SIGTERM shutdown hands traffic to the port's other workers."""

    def __init__(
        self,
        config: uvicorn.Config,
        gate: DrainGate,
        listeners: list[socket.socket],
        drain_s: float,
    ) -> None:
        super().__init__(config)
        self.gate = gate
        self.listeners = listeners
        self.drain_s = drain_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.gate.draining = True
        # No await until the listeners are closed: nothing the kernel queued is reset.
        queued: list[socket.socket] = []
        for sock in self.listeners:
            while True:
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # closed or failed listener: nothing more to take
                    break
                conn.setblocking(False)
                queued.append(conn)
        for server in self.servers:
            server.close()
        for sock in self.listeners:
            sock.close()
        protocol = partial(
            self.config.http_protocol_class,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        for conn in queued:
            try:
                await loop.connect_accepted_socket(protocol, conn)
            except OSError:
                conn.close()
        if queued:
            _log.info("draining: took over %d queued connection(s)", len(queued))
        deadline = loop.time() + self.drain_s
        while self.server_state.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets=None)


def _listener(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))  # uvicorn listens once the models are loaded
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _http_protocol() -> type[asyncio.Protocol]:
    if importlib.util.find_spec("httptools"):
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV),
        help=f"serving config JSON (default: ${CONFIG_ENV})",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="share --port with other worker processes (SO_REUSEPORT); drain on SIGTERM",
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        default=None,
        help="also listen on this port of this process alone (per-worker health and reload)",
    )
    parser.add_argument(
        "--drain-s",
        type=float,
        default=2.0,
        help="with --reuse-port: seconds keep-alive clients get to move after SIGTERM",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    if not args.config:
        parser.error(f"give --config or set {CONFIG_ENV}")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    listeners: list[socket.socket] = []
    try:
        if args.reuse_port or args.admin_port is not None:
            listeners.append(_listener(args.host, args.port, args.reuse_port))
        if args.admin_port is not None:
            listeners.append(_listener(args.host, args.admin_port, reuse_port=False))
    except OSError as exc:
        for sock in listeners:
            sock.close()
        print(f"serving: cannot listen on {args.host}: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(ServingSettings.from_file(args.config))
    except (ConfigError, ModelLoadError) as exc:
        for sock in listeners:
            sock.close()
        print(f"serving: {exc}", file=sys.stderr)
        return 2
    gate = DrainGate(app)
    state = app.state.server

    def limits() -> tuple[float, float]:  # the current config's, so a reload applies
        settings = state.runtime.settings
        return settings.header_timeout_s, settings.body_timeout_s

    config = uvicorn.Config(
        gate if args.reuse_port else app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=guarded_protocol(_http_protocol(), limits),
    )
    if not listeners:
        uvicorn.Server(config).run()
        return 0
    drain_s = args.drain_s if args.reuse_port else 0.0
    _log.info(
        "serving on %s port %d%s%s",
        args.host,
        args.port,
        " (shared)" if args.reuse_port else "",
        f", admin port {args.admin_port}" if args.admin_port is not None else "",
    )
    DrainingServer(config, gate, listeners, drain_s).run(sockets=listeners)
    return 0


if __name__ == "__main__":
    sys.exit(main())
