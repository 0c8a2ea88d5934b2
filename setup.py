"""Build script for pygan's compiled extensions (metadata lives in pyproject.toml).

Two extension modules are built from csrc/:

* ``pygan._cuda_emu`` — always, with the C++ compiler: the CUDA kernels of csrc/kernels/*.cu
  compiled as C++ with ``-DPYGAN_EMU`` and run by the CPU emulator of csrc/emu (fibers), plus
  the emulator's own test kernels.  A failure here fails the build: it only needs a C++17
  compiler.
* ``pygan._cuda`` — when nvcc is found (``$CUDA_HOME/bin/nvcc``, ``$CUDA_PATH`` or the PATH): the
  same kernels compiled by nvcc for ``PYGAN_CUDA_ARCHS`` (default ``"80;90"``: sm_80 and sm_90
  SASS plus compute_90 PTX), linked with the static CUDA runtime, so importing it needs the
  driver only when a kernel runs.
    PYGAN_CUDA=0   skip it;  PYGAN_CUDA=1   a failure is fatal;  unset   a failure prints why
    and the install goes on without it (pygan then reports the ``cuda`` backend unavailable).

Development build in place:  python setup.py build_ext --inplace  (or pip install -e .).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent.resolve()
CSRC = Path("csrc")
KERNELS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / CSRC / "kernels").glob("*.cu"))
HEADERS = [str(CSRC / "include/pygan/kernel.h"), str(CSRC / "include/pygan/launchers.h"),
           str(CSRC / "emu/emu.h")]

# Every memory access of kernel code becomes a call into the emulator (no sanitizer runtime is
# linked: csrc/emu/emu.cpp defines the entry points); -g1 gives the line tables race reports quote.
EMU_INSTRUMENT = ["-fsanitize=thread", "-fno-tree-vectorize", "-fno-store-merging", "-g1"]

ParallelCompile("PYGAN_BUILD_JOBS", default=0).install()   # g++ sources in parallel (0 = all cores)


def _log(msg: str) -> None:
    print(f"pygan setup: {msg}", file=sys.stderr, flush=True)


def find_nvcc() -> str | None:
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin/nvcc").is_file():
            return str(Path(home) / "bin/nvcc")
    return shutil.which("nvcc")


def cuda_archs() -> list[str]:
    raw = os.environ.get("PYGAN_CUDA_ARCHS", "80;90")
    archs = [a.strip().replace("sm_", "").replace(".", "") for a in raw.replace(",", ";").split(";") if a.strip()]
    if not archs or not all(a.isdigit() for a in archs):
        raise ValueError(f"PYGAN_CUDA_ARCHS={raw!r}: expected compute capabilities like '80;90'")
    return archs


def nvcc_arch_flags(archs: list[str]) -> list[str]:
    flags = []
    for a in archs:
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    top = max(archs, key=int)
    return flags + ["-gencode", f"arch=compute_{top},code=compute_{top}"]   # PTX for newer GPUs


class BuildExt(build_ext):
    """Compiles the .cu files: as C++ for the emulator, with nvcc for pygan._cuda (optional)."""

    def build_extension(self, ext):
        if ext.name == "pygan._cuda_emu":
            # kernel code (the .cu files and the emulator's test kernels) is compiled with every load
            # and store instrumented, for the emulator's shared-memory race check (csrc/emu/emu.cpp)
            kernel_code = self._emu_wrappers() + [str(CSRC / "emu/test_kernels.cpp")]
            ext.sources = [s for s in ext.sources if not s.endswith(".cu") and s not in kernel_code]
            ext.extra_objects = self.compiler.compile(
                kernel_code, output_dir=self.build_temp, macros=ext.define_macros,
                include_dirs=ext.include_dirs + self.include_dirs,
                extra_postargs=ext.extra_compile_args + EMU_INSTRUMENT, depends=ext.depends)
            return super().build_extension(ext)
        if ext.name == "pygan._cuda":
            mode = os.environ.get("PYGAN_CUDA", "")
            try:
                ext.extra_objects = self._nvcc_objects()
                super().build_extension(ext)
            except Exception as e:  # noqa: BLE001 — any failure of the optional build is reported
                if mode == "1":
                    raise
                self.extensions = [x for x in self.extensions if x is not ext]   # nothing to copy in place
                _log(f"the CUDA extension pygan._cuda was NOT built: {e}")
                _log("pygan installs without it (the 'cuda' backend will be unavailable); "
                     "set PYGAN_CUDA=1 to make this fatal, PYGAN_CUDA=0 to skip the attempt")
            return None
        return super().build_extension(ext)

    def _emu_wrappers(self) -> list[str]:
        """One C++ file per kernel file, each just #including it (g++ will not compile *.cu)."""
        out = Path(self.build_temp).resolve() / "emu_kernels"
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for cu in KERNELS:
            src = (ROOT / cu).resolve()
            w = out / (Path(cu).stem + ".cpp")
            text = f'// generated by setup.py: {cu} compiled for the CPU emulator\n#include "{src}"\n'
            if not w.exists() or w.read_text() != text:
                w.write_text(text)
            files.append(str(w))
        return files

    def _nvcc_objects(self) -> list[str]:
        nvcc = find_nvcc()
        if nvcc is None:
            raise RuntimeError("nvcc not found (set CUDA_HOME or put nvcc on the PATH)")
        flags = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-I", str(ROOT / CSRC / "include"),
                 *nvcc_arch_flags(cuda_archs())]
        out = Path(self.build_temp).resolve() / "cuda_kernels"
        out.mkdir(parents=True, exist_ok=True)

        def compile_one(cu: str) -> str:
            obj = out / (Path(cu).stem + ".o")
            cmd = [nvcc, *flags, "-c", str(ROOT / cu), "-o", str(obj)]
            _log(" ".join(cmd))
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"nvcc failed on {cu} (exit {r.returncode}):\n{r.stdout}{r.stderr}")
            return str(obj)

        jobs = max(1, min(len(KERNELS), os.cpu_count() or 1))
        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(compile_one, KERNELS))


def cuda_lib_dirs() -> list[str]:
    """Where libcudart_static.a may be: $CUDA_HOME, nvcc's own prefix, /usr/local/cuda."""
    nvcc = find_nvcc()
    if nvcc is None:
        return []
    homes = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), Path(nvcc).resolve().parent.parent,
             "/usr/local/cuda", "/opt/cuda"]
    dirs = []
    for home in filter(None, homes):
        for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
            d = Path(home) / sub
            if (d / "libcudart_static.a").is_file() and str(d) not in dirs:
                dirs.append(str(d))
    return dirs


def extensions():
    include = [str(CSRC / "include")]
    exts = [Pybind11Extension(
        "pygan._cuda_emu",
        sources=[str(CSRC / "bindings.cpp"), str(CSRC / "emu/emu.cpp"), str(CSRC / "emu/test_kernels.cpp"),
                 *KERNELS],
        include_dirs=include,
        define_macros=[("PYGAN_EMU", "1"), ("PYGAN_MODULE", "_cuda_emu")],
        extra_compile_args=["-O2", "-std=c++17", "-fvisibility=hidden"],
        depends=HEADERS,
        cxx_std=17,
    )]
    if os.environ.get("PYGAN_CUDA", "") != "0":
        exts.append(Pybind11Extension(
            "pygan._cuda",
            sources=[str(CSRC / "bindings.cpp")],
            include_dirs=include,
            define_macros=[("PYGAN_MODULE", "_cuda")],
            extra_compile_args=["-O2", "-g0"],
            library_dirs=cuda_lib_dirs(),
            libraries=["cudart_static", "dl", "pthread", "rt"],
            depends=HEADERS + KERNELS,
            cxx_std=17,
        ))
    return exts


class BuildPy(build_py):
    """Also ships csrc/ as pygan/_csrc, so an installed pygan can compile its kernels at run time
    with NVRTC (the cupy backend's RawModule path; pygan.backend.cupy_backend.csrc_dir)."""

    def run(self):
        super().run()
        src = Path(__file__).resolve().parent / "csrc"
        if src.is_dir() and not getattr(self, "editable_mode", False):
            shutil.copytree(src, Path(self.build_lib) / "pygan" / "_csrc", dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.o", "*.so"))


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
