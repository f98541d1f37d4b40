"""Build glue for the C core: every native/*.c is one translation unit of dsd._native.

Compiled with -Wall -Wextra -Werror so a warning is a build failure, and linked with liburing
(the io_uring engine). Sub-folders of native/ (tests, fuzz targets) are built by the Makefile.
"""

from glob import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

SOURCES = sorted(glob("native/*.c"))
DEBUG = os.environ.get("DSD_NATIVE_DEBUG") == "1"

native = Extension(
    "dsd._native",
    sources=SOURCES,
    include_dirs=["native"],
    libraries=["uring", "zstd", "pthread"],
    extra_compile_args=[
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-Wno-missing-field-initializers",
        "-fvisibility=hidden",
        "-O0" if DEBUG else "-O3",
        "-g",
    ],
    depends=sorted(glob("native/*.h")),
)


def _package_list():
    pkgs = {"dsd": "dsd", "dsd.daemon": "daemon", "dsd.client": "client", "dsd.protocol": "protocol"}
    found = []
    for name, root in pkgs.items():
        for dirpath, _dirs, files in os.walk(root):
            if "__init__.py" in files and "__pycache__" not in dirpath:
                rel = os.path.relpath(dirpath, root)
                found.append(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return sorted(set(found))


setup(
    ext_modules=[native],
    packages=_package_list(),
    package_data={"dsd": ["shaders/*.spv"]},
    cmdclass={"build_py": build_py},
)
