"""CUDA C on the CPU, for the kernel tests: the emulator that tests/test_cuda_kernels.py uses.

An emulation header turns each thread of a block into a std::thread, __syncthreads() into a
barrier and __shared__ into a static (blocks run one after another); g++ compiles every kernel
of minigrad/cuda/sources.py into one library per dtype, and EmulatedKernel stands in for a
cupy.RawKernel, checking every argument against the kernel's C signature (pointer dtypes,
contiguity, and that scalars are NumPy scalars of exactly the C type, which CuPy needs). While a
fake stream captures (tests/test_backend_seam.py), launches are recorded for the fake graph.
"""

from __future__ import annotations

import ctypes
import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from minigrad.cuda import kernels
from tests.test_backend_seam import CAPTURE, FakeGpuArray, launched

KERNEL_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')

EMULATION_HEADER = r"""
// CUDA C on the CPU, for tests: threads of a block are std::threads, blocks run in turn.
#include <math.h>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
struct Dim3 { unsigned x = 0, y = 1, z = 1; };
static thread_local Dim3 threadIdx, blockIdx;
static Dim3 blockDim, gridDim;
class Barrier {  // __syncthreads(): every thread of the block waits for the others
  public:
    explicit Barrier(unsigned count) : count_(count) {}
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        unsigned generation = generation_;
        if (++waiting_ == count_) { waiting_ = 0; ++generation_; all_.notify_all(); }
        else all_.wait(lock, [&] { return generation != generation_; });
    }
  private:
    std::mutex mutex_; std::condition_variable all_;
    unsigned count_, waiting_ = 0, generation_ = 0;
};
static Barrier* block_barrier;
#define __global__
#define __device__
#define __shared__ static
#define __syncthreads() block_barrier->wait()
#define __threadfence() __atomic_thread_fence(__ATOMIC_SEQ_CST)
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, sizeof f); return f; }
template <class Body> void emulate(unsigned grid, unsigned block, Body body) {
    gridDim.x = grid; blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        Barrier barrier(block);
        block_barrier = &barrier;
        std::vector<std::thread> threads;
        for (unsigned t = 0; t < block; ++t)
            threads.emplace_back([&, b, t] { blockIdx.x = b; threadIdx.x = t; body(); });
        for (auto& thread : threads) thread.join();
    }
}
"""
C_SCALARS = {"long long": (ctypes.c_longlong, np.int64), "int": (ctypes.c_int, np.int32)}
C_POINTEES = {"long long": np.int64, "unsigned long long": np.uint64}  # else scalar_t
# Structs passed by value, as their fields (name, element dtype, shape): CuPy takes a
# one-element NumPy array with these fields, laid out as the C struct (all 8-byte words here).
C_STRUCTS = {"SgdTensors": [("address", np.dtype(np.int64), (3 * kernels.MAX_SGD_TENSORS,)),
                            ("starts", np.dtype(np.int64), (kernels.MAX_SGD_TENSORS + 1,))]}


def _parameters(source: str) -> tuple[str, list]:
    """(name, [(C type, parameter name), ...]) of the one kernel in a source."""
    name, params = KERNEL_SIGNATURE.search(source).groups()
    pairs = [re.match(r"(.*?)\s*(\w+)$", " ".join(p.split())).groups() for p in params.split(",")]
    return name, pairs


def _launcher(name: str, params: list) -> str:
    """C++ that runs kernel `name` on the emulator: launch_<name>(grid, block, args...)."""
    declared = ", ".join(f"{ctype} {pname}" for ctype, pname in params)
    passed = ", ".join(pname for _, pname in params)
    return (f'extern "C" void launch_{name}(unsigned grid, unsigned block, {declared}) '
            f"{{ emulate(grid, block, [=] {{ {name}({passed}); }}); }}\n")


class EmulatedKernel:
    """Stands in for a cupy.RawKernel: kernel((grid,), (block,), args) on the CPU, args checked."""

    def __init__(self, library, name: str, params: list, dtype):
        self.name, self.params, self.dtype = name, params, np.dtype(dtype)
        self.function = getattr(library, f"launch_{name}")
        self.function.restype = None

    def _convert(self, ctype: str, pname: str, value):
        where = f"{self.name}: argument {pname} ({ctype})"
        if ctype.endswith("*"):
            array = value._data if isinstance(value, FakeGpuArray) else value
            assert isinstance(array, np.ndarray), f"{where} got {type(value).__name__}"
            pointee = ctype.replace("const", "").rstrip("*").strip()
            expected = C_POINTEES.get(pointee, self.dtype)
            assert array.dtype == expected, f"{where} got a {array.dtype} array"
            assert array.flags.c_contiguous, f"{where} got a non-contiguous array"
            return ctypes.c_void_p(array.ctypes.data)
        if ctype.replace("const", "").strip() in C_STRUCTS:  # a struct passed by value
            fields = C_STRUCTS[ctype.replace("const", "").strip()]
            assert isinstance(value, np.ndarray) and value.shape == (1,), \
                f"{where} got {type(value).__name__}, not a one-element NumPy struct array"
            assert [(n, value.dtype[n].base, value.dtype[n].shape) for n in value.dtype.names] \
                == fields, f"{where} got fields {value.dtype}, not {fields}"
            words = ctypes.c_longlong * (value.dtype.itemsize // 8)
            struct = type(ctype, (ctypes.Structure,), {"_fields_": [("words", words)]})
            return struct.from_buffer_copy(value.tobytes())
        c_type, expected = C_SCALARS.get(ctype, (None, None))
        if ctype == "scalar_t":
            c_type = ctypes.c_float if self.dtype == np.float32 else ctypes.c_double
            expected = self.dtype.type
        assert type(value) is expected, f"{where} got {type(value).__name__}, not {expected}"
        return c_type(value)

    def __call__(self, grid, block, args):
        assert len(args) == len(self.params), f"{self.name}: {len(args)} arguments"
        assert block == (kernels.BLOCK,) and grid[0] >= 1, f"{self.name}: grid {grid} block {block}"
        converted = [self._convert(c, p, v) for (c, p), v in zip(self.params, args, strict=True)]
        run = functools.partial(self.function, ctypes.c_uint(grid[0]), ctypes.c_uint(block[0]),
                                *converted)
        if CAPTURE.recording is not None:  # a fake stream capture: the graph replays it later
            CAPTURE.recording.append(run)
        else:
            launched(f"kernel:{self.name}")
            run()


@functools.cache
def _build() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="minigrad-kernels-"))
    found = {}
    for dtype, scalar in ((np.float32, "float"), (np.float64, "double")):
        # One translation unit: the header, scalar_t and the prelude once, then every kernel.
        code = [EMULATION_HEADER, f"typedef {scalar} scalar_t;", kernels.PRELUDE]
        signatures = {}
        for name, source in kernels.SOURCES.items():
            kernel_name, signatures[name] = _parameters(source)
            assert kernel_name == name
            code += [source, _launcher(name, signatures[name])]
        path = folder / f"kernels_{scalar}.cpp"
        path.write_text("\n".join(code))
        library = folder / f"kernels_{scalar}.so"
        command = ["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread", str(path), "-o",
                   str(library)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"g++ failed:\n{result.stderr[:4000]}"
        loaded = ctypes.CDLL(str(library))
        for name, params in signatures.items():
            found[name, np.dtype(dtype).name] = EmulatedKernel(loaded, name, params, dtype)
    return found


def emulated_kernels() -> dict:
    """{(name, dtype name): EmulatedKernel} for every kernel, built once per process with g++."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed (needed to run the kernels on the CPU)")
    return _build()
