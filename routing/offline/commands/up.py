"""``routellm-serve up``: the service in the foreground, as ``serve run CONFIG`` runs it, in an
environment that holds the Ray Serve settings it is tuned for (:mod:`routing.serve_env`; a value
already set wins). The config is checked first, as ``routellm-serve check`` does, so a mistake
is named before Ray starts."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import NoReturn

import psutil

from routing import serve_env
from routing.offline.commands import Echo
from routing.offline.commands.check import check, describe, read_serve_config


def serve_executable() -> str:
    """Ray's ``serve`` command of this environment (beside its Python), else the one on PATH."""
    here = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("serve", path=here)
    if found is None:
        raise ValueError("Ray Serve's 'serve' command is not installed here (pip install 'ray[serve]')")
    return found


def check_port_free(host: str, port: int) -> None:
    """Names what holds the HTTP port, before Ray starts and fails on it: often the HAProxy of a
    service stopped abruptly, which goes on holding it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            return
        except OSError as exc:
            problem = exc.strerror
    holders = sorted({_named(c.pid) for c in psutil.net_connections("tcp") if c.laddr.port == port and c.pid})
    held = f" (held by {', '.join(holders)})" if holders else ""
    raise ValueError(f"http_options.port {port} on {host}: {problem}{held}; stop what holds it or choose another port")


def _named(pid: int) -> str:
    try:
        return f"{psutil.Process(pid).name()} pid {pid}"
    except psutil.NoSuchProcess:
        return f"pid {pid}"


def up(config: Path, echo: Echo = print) -> NoReturn:
    for app in check(config):
        for line in describe(app):
            echo(line)
    http = read_serve_config(config).get("http_options") or {}
    # Without http_options.host, HAProxy listens on every interface (Ray's default under it).
    host, port = str(http.get("host", "0.0.0.0")), int(http.get("port", 8000))
    check_port_free(host, port)
    env = dict(os.environ)
    serve_env.apply(env)
    serve = serve_executable()
    settings = " ".join(f"{key}={env[key]}" for key in (*serve_env.SERVE_ENV, *serve_env.HAPROXY_PORTS))
    echo(f"{settings} serve run {config}")
    echo(f"answers on http://{host}:{port} once GET /health says ready; Ctrl-C stops it")
    sys.stdout.flush()
    os.execve(serve, [serve, "run", str(config)], env)
