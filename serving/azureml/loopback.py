"""A gunicorn config file that keeps a local azmlinfsrv on 127.0.0.1.

azmlinfsrv 1.5 starts gunicorn with `-b 0.0.0.0:<port>` (its `DEFAULT_HOST`; no flag or
environment variable changes it), and gunicorn's command line wins over config files and
`GUNICORN_CMD_ARGS`, so `bind` cannot simply be set. gunicorn calls `on_starting` before it
creates the listening sockets; there every all-interfaces address becomes loopback. Use it
for local runs and tests only (in a container on Azure the server must listen on all
interfaces):

    GUNICORN_CMD_ARGS="--config serving/azureml/loopback.py" \
        azmlinfsrv --entry_script serving/azureml/score.py --model_dir <model> --port 5001
"""

from typing import Any

_ANY_HOST = ("0.0.0.0:", "[::]:", ":")
# gunicorn 27's control socket defaults to $HOME/.gunicorn/gunicorn.ctl, one path for every
# server on the machine (two local servers would take it from each other); none is needed here
control_socket_disable = True


def _loopback(address: str) -> str:
    for prefix in _ANY_HOST:
        if address.startswith(prefix):
            return "127.0.0.1:" + address.removeprefix(prefix)
    return address


def on_starting(server: Any) -> None:
    """gunicorn's hook: rewrite the bind addresses before any socket exists."""
    server.cfg.set("bind", [_loopback(address) for address in server.cfg.bind])
