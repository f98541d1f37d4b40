"""Where the daemon lives on this host: runtime directory, sockets, token.

Shared by the daemon (which creates these) and the client library (which finds them), so
both sides agree without configuration. Pure paths and file checks; no sockets.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

DEFAULT_TCP_PORT = 47811
TOKEN_FILE = "token"
STATE_FILE = "daemon.json"
SOCKET_FILE = "dsd.sock"


class RuntimeDirError(OSError):
    """The runtime directory is missing, not ours, or open to other users."""


def runtime_dir() -> Path:
    """``$DSD_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/dsd``, else ``/tmp/dsd-<uid>`` (no XDG on CI or ssh)."""
    explicit = os.environ.get("DSD_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "dsd"
    return Path(f"/tmp/dsd-{os.getuid()}")


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` mode 0700, or check an existing one is a real directory owned by us, 0700."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"{path} is not a directory (a symlink or file is in the way)")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"{path} belongs to uid {st.st_uid}, not to this user ({os.getuid()})")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def default_ipc_endpoint(directory: Path | None = None) -> str:
    return f"ipc://{(directory or runtime_dir()) / SOCKET_FILE}"


def default_tcp_endpoint() -> str:
    return f"tcp://127.0.0.1:{DEFAULT_TCP_PORT}"


def token_path(directory: Path | None = None) -> Path:
    return Path(os.environ.get("DSD_TOKEN_FILE") or (directory or runtime_dir()) / TOKEN_FILE)


def load_or_create_token(path: Path) -> str:
    """The per-user secret TCP clients present in HELLO; created once, mode 0600."""
    try:
        return read_token(path)
    except FileNotFoundError:
        pass
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
    finally:
        os.close(fd)
    return token


def read_token(path: Path) -> str:
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise RuntimeDirError(f"{path} is readable by other users (mode {stat.S_IMODE(st.st_mode):o}); refusing it")
    token = path.read_text().strip()
    if not token:
        raise RuntimeDirError(f"{path} is empty")
    return token


def write_state(directory: Path, state: dict) -> Path:
    """Record the bound endpoints (e.g. the real TCP port) for clients and the Wine shim."""
    path = directory / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_state(directory: Path | None = None) -> dict | None:
    try:
        return json.loads(((directory or runtime_dir()) / STATE_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
