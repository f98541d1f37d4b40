"""Host checks behind ``dsd doctor``: each one really tries the feature and says why not.

Every check returns a ``Check`` (name, ok, detail). They are cheap (well under a second
each) and side-effect free apart from temporary files they remove.
"""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    optional: bool = False   # a missing optional feature has a fallback; it is not an error


def check_native() -> Check:
    try:
        from dsd import _native
    except ImportError as exc:
        return Check("native core", False, f"dsd._native does not import: {exc} (run `make build`)")
    parts = sorted(n for n in dir(_native) if not n.startswith("_"))
    return Check("native core", True, f"dsd._native loaded from {_native.__file__} ({len(parts)} entry points)")


def check_io_uring() -> Check:
    try:
        from dsd import _native

        ok, why = _native.io_uring_probe()
    except (ImportError, AttributeError) as exc:
        return Check("io_uring", False, f"cannot probe: {exc}", optional=True)
    backend = os.environ.get("DSD_IO_BACKEND", "auto")
    chosen = ("uring" if ok else "posix") if backend == "auto" else backend
    return Check("io_uring", ok, f"{why}; DSD_IO_BACKEND={backend} -> {chosen} engine", optional=True)


def check_odirect(path: str) -> Check:
    name = f"O_DIRECT on {path}"
    try:
        from dsd import _native

        ok, why = _native.odirect_probe(path)
        return Check(name, ok, why, optional=True)
    except (ImportError, AttributeError):
        pass
    return Check(name, *_odirect_python(path), optional=True)


def _odirect_python(directory: str) -> tuple[bool, str]:
    """Write a block, reopen with O_DIRECT, read it into a page-aligned buffer."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dsd-odirect-")
    except OSError as exc:
        return False, f"cannot create a file there: {exc.strerror}"
    try:
        os.write(fd, b"\xa5" * 4096)
        os.close(fd)
        try:
            dfd = os.open(tmp, os.O_RDONLY | os.O_DIRECT)
        except OSError as exc:
            return False, f"open(O_DIRECT) fails: {exc.strerror}; buffered reads are used"
        try:
            buf = mmap.mmap(-1, 4096)
            n = os.preadv(dfd, [buf], 0)
            return (n == 4096 and buf[:4096] == b"\xa5" * 4096), f"aligned 4 KiB read returned {n} bytes"
        except OSError as exc:
            return False, f"O_DIRECT read fails: {exc.strerror}; buffered reads are used"
        finally:
            os.close(dfd)
    finally:
        os.unlink(tmp)


def check_shm() -> Check:
    """/dev/shm is where clients put their destination regions."""
    if not os.path.isdir("/dev/shm"):
        return Check("/dev/shm", False, "missing: clients cannot create shared-memory regions")
    try:
        fd = os.open(f"/dev/shm/dsd-doctor-{os.getpid()}", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return Check("/dev/shm", False, f"cannot create a region: {exc.strerror}")
    try:
        os.unlink(f"/dev/shm/dsd-doctor-{os.getpid()}")
        os.ftruncate(fd, 1 << 20)
        with mmap.mmap(fd, 1 << 20) as m:
            m[-1] = 7
        st = os.statvfs("/dev/shm")
        return Check("/dev/shm", True, f"1 MiB region mapped; {st.f_bavail * st.f_frsize / 2**30:.1f} GiB free")
    finally:
        os.close(fd)


def check_vulkan() -> Check:
    try:
        from dsd.daemon import gpu  # type: ignore[attr-defined]
    except ImportError:
        gpu = None
    if gpu is not None and hasattr(gpu, "describe"):
        try:
            ok, detail = gpu.describe()
            return Check("Vulkan", ok, detail, optional=True)
        except Exception as exc:  # a broken driver must not break doctor
            return Check("Vulkan", False, f"probe failed: {exc}", optional=True)
    tool = shutil.which("vulkaninfo")
    if tool is None:
        return Check("Vulkan", False, "no GPU decoder in this build and vulkaninfo not installed", optional=True)
    out = _run([tool, "--summary"])
    names = [line.split("=", 1)[1].strip() for line in out.splitlines() if "deviceName" in line]
    if not names:
        return Check("Vulkan", False, "vulkaninfo found no device", optional=True)
    return Check("Vulkan", True, "devices: " + ", ".join(names), optional=True)


def check_wine() -> Check:
    wine = shutil.which("wine") or shutil.which("wine64")
    if wine is None:
        return Check("Wine", False, "wine not installed (only needed for the dstorage.dll shim)", optional=True)
    return Check("Wine", True, f"{_run([wine, '--version']).strip() or 'present'} at {wine}", optional=True)


def check_daemon(endpoint: str | None) -> Check:
    from dsd.client import Client, DsdError

    try:
        with Client(endpoint, name="dsd-doctor", timeout=2.0) as client:
            rtt = client.ping()
            stats = client.statistics()
        io = stats.get("io", {})
        return Check("daemon", True, f"answering at {client.endpoint} (rtt {rtt * 1e6:.0f} us, io {io.get('backend')}, "
                     f"{stats.get('clients')} clients)", optional=True)
    except DsdError as exc:
        return Check("daemon", False, str(exc), optional=True)


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def all_checks(endpoint: str | None = None) -> list[Callable[[], Check]]:
    return [check_native, check_io_uring, lambda: check_odirect("/tmp"), lambda: check_odirect("/dev/shm"),
            lambda: check_odirect(os.getcwd()), check_shm, check_vulkan, check_wine, lambda: check_daemon(endpoint)]
