"""``churnkit serve``: start the BentoML service for a workspace, on loopback by default.

The service reads everything from its environment (see
:class:`churnkit.service.state.ServiceSettings`),
so this only sets the variables and hands the process over to ``bentoml serve``: signals
(Ctrl-C, a supervisor's SIGTERM) then reach the server directly.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

from churnkit.errors import ChurnkitError

SERVICE = "churnkit.service.app:ChurnService"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]


def serve_env(
    workspace: Path, config: Path | None = None, tracking_uri: str | None = None, reload_seconds: float | None = None,
) -> dict[str, str]:
    """The environment the service reads; anything already set (a token, limits) is kept."""
    env = dict(os.environ)
    env["CHURNKIT_WORKSPACE"] = str(Path(workspace).resolve())
    if config is not None:
        env["CHURNKIT_CONFIG"] = str(Path(config).resolve())
    if tracking_uri:
        env["CHURNKIT_TRACKING_URI"] = tracking_uri
    if reload_seconds is not None:
        env["CHURNKIT_RELOAD_SECONDS"] = str(reload_seconds)
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")  # no usage analytics calls from a server
    return env


def check_start(host: str, port: int, env: dict[str, str]) -> list[str]:
    """Refuse a port in use; warnings (not errors) for an open interface without a token."""
    if not 0 < port < 65536:
        raise ChurnkitError(f"--port: {port} is not a port number (1-65535)")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise ChurnkitError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    warnings = []
    if not is_loopback(host) and not env.get("CHURNKIT_API_TOKEN"):
        warnings.append(
            f"listening on {host} without a token: anyone who can reach it can score and reload; "
            "set CHURNKIT_API_TOKEN to require 'Authorization: Bearer <token>'"
        )
    return warnings


def exec_server(host: str, port: int, env: dict[str, str]) -> None:  # pragma: no cover - replaces the process
    cmd = serve_command(host, port)
    os.execve(cmd[0], cmd, env)
