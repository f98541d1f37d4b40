"""Loading the compiled shaders shipped in dsd/shaders/, with the SPIR-V sanity checks."""

from __future__ import annotations

import os

from .errors import GpuUnavailable

SPIRV_MAGIC = 0x07230203


def shader_dir() -> str:
    """Where the .spv files live: next to the installed `dsd` package."""
    import dsd

    return os.path.join(os.path.dirname(os.path.abspath(dsd.__file__)), "shaders")


def validate_spirv(code: bytes, name: str = "shader") -> bytes:
    """Returns `code` if it looks like SPIR-V (whole 32-bit words, little-endian magic)."""
    if len(code) < 20 or len(code) % 4 != 0:
        raise GpuUnavailable(f"{name}: SPIR-V size {len(code)} is not a whole number of words")
    magic = int.from_bytes(code[:4], "little")
    if magic != SPIRV_MAGIC:
        raise GpuUnavailable(f"{name}: bad SPIR-V magic 0x{magic:08x}")
    return code


def load_spirv(name: str) -> bytes:
    """Reads and validates dsd/shaders/<name>.spv."""
    path = os.path.join(shader_dir(), name + ".spv")
    try:
        with open(path, "rb") as f:
            code = f.read()
    except OSError as exc:
        raise GpuUnavailable(f"shader {name}.spv not built ({exc.strerror}); run `make build`") from exc
    return validate_spirv(code, name + ".spv")
