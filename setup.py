"""Build glue for the C core: every native/*.c is one translation unit of dsd._native.

Compiled with -Wall -Wextra -Werror so a warning is a build failure, and linked with liburing
(the io_uring engine). Sub-folders of native/ (tests, fuzz targets) are built by the Makefile.

The one shader rule also lives here: every shaders/*.comp is compiled by glslangValidator into
dsd/shaders/<name>.spv (package data) whenever build_py or build_ext runs.
"""

from glob import glob
import os
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

SHADER_ENV = "vulkan1.2"


def compile_shaders():
    """shaders/*.comp -> dsd/shaders/*.spv, skipping outputs newer than every shader source."""
    glslang = shutil.which("glslangValidator")
    sources = sorted(glob("shaders/*.comp"))
    if not sources:
        return
    if glslang is None:
        raise SystemExit("glslangValidator not found: install glslang-tools (make deps does) to build the shaders")
    os.makedirs(os.path.join("dsd", "shaders"), exist_ok=True)
    newest = max(os.path.getmtime(p) for p in glob("shaders/*"))
    for src in sources:
        out = os.path.join("dsd", "shaders", os.path.splitext(os.path.basename(src))[0] + ".spv")
        if os.path.exists(out) and os.path.getmtime(out) >= newest:
            continue
        subprocess.run([glslang, "--target-env", SHADER_ENV, "-V", src, "-o", out], check=True,
                       stdout=subprocess.DEVNULL)


class build_py_with_shaders(build_py):
    def run(self):
        compile_shaders()
        super().run()


class build_ext_with_shaders(build_ext):
    def run(self):
        compile_shaders()
        super().run()

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
    cmdclass={"build_py": build_py_with_shaders, "build_ext": build_ext_with_shaders},
)
