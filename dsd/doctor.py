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
    except (ImportError, AttributeError) as exc:
        return Check(name, False, f"cannot probe: {exc}", optional=True)
    return Check(name, ok, f"{why}{'' if ok else '; buffered reads are used'}", optional=True)


def check_mapped_reads() -> Check:
    """A cached read through an engine set up as the daemon's: does the mapped read path take it?"""
    try:
        from dsd import _native
        from dsd.ioengine import mapped_read_check, settings

        chosen = settings()
        with _native.IoEngine(**{**chosen.engine_kwargs(), "workers": 1}) as eng:
            name, ok, detail = mapped_read_check(eng, chosen.mapped, tempfile.gettempdir())
    except (ImportError, OSError, ValueError) as exc:
        return Check("mapped reads", False, f"cannot try: {exc}", optional=True)
    return Check(name, ok, detail, optional=True)


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
    """Opens the Vulkan device the daemon would use and names the shader it would run."""
    try:
        from dsd.daemon import gpu
    except ImportError as exc:
        return Check("Vulkan", False, f"GPU decoder unavailable: {exc}", optional=True)
    try:
        info = gpu.describe()
    except Exception as exc:  # a broken driver must not break doctor
        return Check("Vulkan", False, f"probe failed: {exc}", optional=True)
    mode = info.get("mode") or info.get("mode_error")
    if info.get("unavailable") or not info.get("device"):
        return Check("Vulkan", False, f"{info.get('unavailable', 'no device')}; DSD_DECODE={mode} -> CPU codec",
                     optional=True)
    dev, shader = info["device"], info.get("shader") or {}
    return Check("Vulkan", True, f"{dev['name']} ({dev['kind']}, Vulkan {dev['api']}, subgroup {dev['subgroup_size']}: "
                 f"{dev['chosen_because']}); shader {shader.get('variant')} ({shader.get('chosen_because')}); "
                 f"DSD_DECODE={mode}", optional=True)


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
            lambda: check_odirect(os.getcwd()), check_mapped_reads, check_shm, check_vulkan, check_wine, lambda: check_daemon(endpoint)]
