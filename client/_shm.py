"""Shared-memory regions: the destinations the daemon reads into.

A region is a file in /dev/shm that the client creates and maps, then registers with the
daemon by name; once the daemon has mapped it, the name is unlinked so a crash leaves nothing
behind. Both sides then share the same pages: the daemon writes, the client reads, no copy.
"""

from __future__ import annotations

import mmap
import os
import secrets

SHM_DIR = "/dev/shm"


class Region:
    """A mapped shared-memory buffer registered with the daemon (``id`` set once registered)."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"region size must be positive, got {size}")
        self.size = size
        self.name = f"dsd-{os.getpid()}-{secrets.token_hex(6)}"
        self.id: int | None = None
        self._path = os.path.join(SHM_DIR, self.name)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, size)
            self._map: mmap.mmap | None = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.unlink(self._path)
            raise
        finally:
            os.close(fd)
        self._linked = True
        self.view = memoryview(self._map)

    @property
    def closed(self) -> bool:
        return self._map is None

    def unlink(self) -> None:
        """Remove the /dev/shm name (the mapping stays valid on both sides)."""
        if self._linked:
            self._linked = False
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass

    def release(self) -> None:
        """Unmap locally; the client tells the daemon first (UNREGISTER_MEMORY)."""
        self.unlink()
        if self._map is not None:
            self.view.release()
            self._map.close()
            self._map = None

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<Region id={self.id} size={self.size} {'closed' if self.closed else self.name}>"
