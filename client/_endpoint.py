"""Finding the daemon: endpoint and token resolution shared by both clients."""

from __future__ import annotations

import os
from pathlib import Path

from dsd import _paths

from ._errors import AuthenticationError, DaemonUnavailable


def resolve_endpoint(endpoint: str | None) -> str:
    """Explicit argument, else $DSD_ENDPOINT, else the ipc socket in the runtime directory."""
    if endpoint:
        return endpoint
    env = os.environ.get("DSD_ENDPOINT")
    if env:
        return env
    return _paths.default_ipc_endpoint()


def resolve_token(endpoint: str, token: str | None) -> str | None:
    """TCP needs the per-user token: explicit, $DSD_TOKEN, or the daemon's token file."""
    if token is not None or not endpoint.startswith("tcp://"):
        return token
    env = os.environ.get("DSD_TOKEN")
    if env:
        return env
    path = _paths.token_path()
    try:
        return _paths.read_token(path)
    except FileNotFoundError:
        raise AuthenticationError(f"TCP endpoint {endpoint} needs the daemon's token, but {path} does not exist "
                                  f"(set DSD_TOKEN or DSD_RUNTIME_DIR)") from None
    except _paths.RuntimeDirError as exc:
        raise AuthenticationError(str(exc)) from None


def check_reachable(endpoint: str) -> None:
    """Fail fast with a clear message when an ipc socket file is not there at all."""
    if endpoint.startswith("ipc://"):
        path = Path(endpoint[len("ipc://"):])
        if not path.exists():
            raise DaemonUnavailable(f"no dsd daemon at {endpoint} (socket file missing): start it with `dsd serve`")
    elif not endpoint.startswith("tcp://"):
        raise DaemonUnavailable(f"endpoint {endpoint!r} is neither ipc:// nor tcp://")
