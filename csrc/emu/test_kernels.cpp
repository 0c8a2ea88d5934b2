// test_kernels.cpp — small kernels that exercise each feature of the emulator, compiled only
// into pygan._cuda_emu and tested from tests/test_emulator.py.  Written exactly as CUDA device
// code against pygan/kernel.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "pygan/kernel.h"

namespace py = pybind11;
using farr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using iarr = py::array_t<int, py::array::c_style | py::array::forcecast>;

namespace {

unsigned linear_tid() { return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z); }
unsigned linear_bid() { return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z); }
unsigned block_size() { return blockDim.x * blockDim.y * blockDim.z; }

// Every thread records (threadIdx, blockIdx, blockDim, gridDim) at its global linear position.
__global__ void k_coords(int* out) {
    const long long g = 1ll * linear_bid() * block_size() + linear_tid();
    int* o = out + 12 * g;
    o[0] = threadIdx.x; o[1] = threadIdx.y; o[2] = threadIdx.z;
    o[3] = blockIdx.x; o[4] = blockIdx.y; o[5] = blockIdx.z;
    o[6] = blockDim.x; o[7] = blockDim.y; o[8] = blockDim.z;
    o[9] = gridDim.x; o[10] = gridDim.y; o[11] = gridDim.z;
}

// Static shared memory + __syncthreads: reverse each block's slice (needs every write to land
// before any read).  Called twice per thread to check that a barrier can be reused.
__global__ void k_reverse(const float* in, float* out) {
    __shared__ float s[1024];
    const unsigned t = linear_tid(), n = block_size();
    const float* src = in + 1ll * linear_bid() * n;
    float* dst = out + 1ll * linear_bid() * n;
    s[t] = src[t];
    __syncthreads();
    const float v = s[n - 1 - t];
    __syncthreads();                 // all reads done before s is overwritten
    s[t] = v * 2.0f;
    __syncthreads();
    dst[t] = s[n - 1 - t];           // = 2·src[t]... reversed twice: 2·src[t]
}

// Dynamic shared memory: rotate each block's slice by `shift`.
__global__ void k_rotate(const float* in, float* out, int shift) {
    PYGAN_EXTERN_SHARED(float, s);
    const unsigned t = linear_tid(), n = block_size();
    s[t] = in[1ll * linear_bid() * n + t];
    __syncthreads();
    out[1ll * linear_bid() * n + t] = s[(t + shift) % n];
}

// Warp shuffles: per-warp sum with __shfl_down_sync (lane 0), butterfly all-reduce with
// __shfl_xor_sync (every lane), and a width-8 segmented shuffle-down.
__global__ void k_shuffles(const float* in, float* down, float* xr, float* seg) {
    const unsigned t = linear_tid();
    const long long g = 1ll * linear_bid() * block_size() + t;
    float v = in[g];
    float a = v;
    for (int off = 16; off > 0; off >>= 1) a += __shfl_down_sync(0xffffffffu, a, off);
    down[g] = a;
    float b = v;
    for (int m = 1; m < 32; m <<= 1) b += __shfl_xor_sync(0xffffffffu, b, m);
    xr[g] = b;
    seg[g] = __shfl_down_sync(0xffffffffu, v, 3, 8);
}

// Block reduction of pygan/kernel.h (warp shuffles + shared memory), one sum per block.
__global__ void k_block_sum(const float* in, float* out) {
    __shared__ float scratch[32];
    const float v = pygan::block_sum(in[1ll * blockIdx.x * blockDim.x + threadIdx.x], scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = v;
}

// atomicAdd: a histogram (int) and a total (float) across all blocks.
__global__ void k_atomics(const int* idx, long long n, int* hist, float* total) {
    const long long i = 1ll * blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(hist + idx[i], 1);
    atomicAdd(total, 1.0f);
}

// Faulty kernels: the emulator must raise, naming the kernel, instead of hanging.
__global__ void k_early_return_before_barrier(float* out) {
    if (threadIdx.x % 2) return;     // half the block leaves …
    __syncthreads();                 // … the other half waits here forever on a GPU
    out[threadIdx.x] = 1.0f;
}
__global__ void k_warp_vs_block_deadlock(float* out) {
    float v = 1.0f;
    if (threadIdx.x < 16) v = __shfl_down_sync(0xffffffffu, v, 1);   // names lanes 16–31 …
    else __syncthreads();                                            // … which wait elsewhere
    out[threadIdx.x] = v;
}
__global__ void k_shuffle_with_exited_lane(float* out) {
    if (threadIdx.x >= 8) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// A deep frame per thread (a local array of `floats` floats) across a barrier: the fiber stacks.
__global__ void k_stack(float* out, int floats) {
    volatile float big[12 * 1024];   // 48 KiB of stack per thread
    const int n = floats < 12 * 1024 ? floats : 12 * 1024;
    for (int i = 0; i < n; ++i) big[i] = static_cast<float>((threadIdx.x + i) & 3u);   // sums stay exact
    __syncthreads();
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += big[i];
    out[threadIdx.x] = s;
}

__global__ void k_nothing() {}

// Planted shared-memory races for the emulator's race check.  A 16×16-tiled GEMM, C = A·B (n×n,
// n a multiple of 16, one 16×16 block per tile of C); with Barrier1 false the tiles are read before
// every thread has stored its element, with Barrier2 false the next tiles are stored while others
// still read the current ones.
template <bool Barrier1, bool Barrier2>
__global__ void k_tiled_gemm(const float* A, const float* B, float* C, int n) {
    __shared__ float As[16][16], Bs[16][16];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * 16 + ty, col = blockIdx.x * 16 + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < n; k0 += 16) {
        As[ty][tx] = A[row * n + k0 + tx];
        Bs[ty][tx] = B[(k0 + ty) * n + col];
        if (Barrier1) __syncthreads();
        for (int k = 0; k < 16; ++k) acc += As[ty][k] * Bs[k][tx];
        if (Barrier2) __syncthreads();
    }
    C[row * n + col] = acc;
}

// Tree reduction in shared memory (blockDim.x a power of two); without the barrier inside the
// loop a thread reads its partner's slot before the partner has added into it.  (volatile, as in
// warp-synchronous CUDA code, keeps the compiler from holding s[t] in a register across steps.)
template <bool Barrier>
__global__ void k_tree_sum(const float* in, float* out) {
    PYGAN_EXTERN_SHARED(float, dyn);
    volatile float* s = dyn;
    const unsigned t = threadIdx.x;
    s[t] = in[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half) s[t] += s[t + half];
        if (Barrier) __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// Shared-memory histogram: atomics on the same bins are not a race; a plain store to a bin other
// threads add to atomically is.
template <bool PlainStore>
__global__ void k_shared_histogram(const int* idx, int* hist) {
    __shared__ int bins[8];
    if (threadIdx.x < 8) bins[threadIdx.x] = 0;
    __syncthreads();
    atomicAdd(&bins[idx[threadIdx.x] & 7], 1);
    if (PlainStore && threadIdx.x == 5) bins[0] = 0;
    __syncthreads();
    if (threadIdx.x < 8) hist[threadIdx.x] = bins[threadIdx.x];
}

dim3 to_dim3(py::tuple t) {
    unsigned v[3] = {1, 1, 1};
    if (t.size() < 1 || t.size() > 3) throw std::invalid_argument("expected a tuple of 1 to 3 sizes");
    for (size_t i = 0; i < t.size(); ++i) v[i] = t[i].cast<unsigned>();
    return dim3(v[0], v[1], v[2]);
}
long long count(dim3 d) { return 1ll * d.x * d.y * d.z; }

}  // namespace

void register_emulator_tests(py::module_& m) {
    py::module_ t = m.def_submodule("testing", "kernels that exercise the emulator (tests/test_emulator.py)");

    t.def("coords", [](py::tuple grid, py::tuple block) {
        const dim3 g = to_dim3(grid), b = to_dim3(block);
        iarr out({count(g) * count(b), 12ll});
        int* o = out.mutable_data();
        PYGAN_LAUNCH(k_coords, g, b, 0, nullptr, o);
        return out;
    }, "per thread: threadIdx, blockIdx, blockDim, gridDim (12 ints), at its global linear index");

    t.def("reverse", [](farr in, py::tuple grid, py::tuple block) {
        const dim3 g = to_dim3(grid), b = to_dim3(block);
        if (in.size() != count(g) * count(b)) throw std::invalid_argument("reverse: size != threads");
        farr out(in.size());
        PYGAN_LAUNCH(k_reverse, g, b, 0, nullptr, in.data(), out.mutable_data());
        return out;
    });

    t.def("rotate", [](farr in, int threads, int shift) {
        if (in.size() % threads) throw std::invalid_argument("rotate: size not a multiple of threads");
        farr out(in.size());
        PYGAN_LAUNCH(k_rotate, dim3(in.size() / threads), dim3(threads), threads * sizeof(float), nullptr,
                     in.data(), out.mutable_data(), shift);
        return out;
    });

    t.def("shuffles", [](farr in, py::tuple block) {
        const dim3 b = to_dim3(block);
        if (in.size() % count(b)) throw std::invalid_argument("shuffles: size not a multiple of the block");
        farr down(in.size()), xr(in.size()), seg(in.size());
        PYGAN_LAUNCH(k_shuffles, dim3(in.size() / count(b)), b, 0, nullptr, in.data(), down.mutable_data(),
                     xr.mutable_data(), seg.mutable_data());
        return py::make_tuple(down, xr, seg);
    });

    t.def("block_sum", [](farr in, int threads) {
        if (in.size() % threads) throw std::invalid_argument("block_sum: size not a multiple of threads");
        farr out(in.size() / threads);
        PYGAN_LAUNCH(k_block_sum, dim3(in.size() / threads), dim3(threads), 0, nullptr, in.data(), out.mutable_data());
        return out;
    });

    t.def("atomics", [](iarr idx, int bins, int threads) {
        iarr hist(bins);
        std::memset(hist.mutable_data(), 0, sizeof(int) * bins);
        float total = 0.0f;
        for (py::ssize_t i = 0; i < idx.size(); ++i)
            if (idx.data()[i] < 0 || idx.data()[i] >= bins) throw std::invalid_argument("atomics: index out of range");
        const long long n = idx.size();
        PYGAN_LAUNCH(k_atomics, dim3(pygan::ceil_div(n, threads)), dim3(threads), 0, nullptr, idx.data(), n,
                     hist.mutable_data(), &total);
        return py::make_tuple(hist, total);
    });

    t.def("faulty", [](const std::string& which, int threads) {
        farr out(threads);
        float* o = out.mutable_data();
        if (which == "early_return") PYGAN_LAUNCH(k_early_return_before_barrier, dim3(1), dim3(threads), 0, nullptr, o);
        else if (which == "deadlock") PYGAN_LAUNCH(k_warp_vs_block_deadlock, dim3(1), dim3(threads), 0, nullptr, o);
        else if (which == "exited_lane") PYGAN_LAUNCH(k_shuffle_with_exited_lane, dim3(1), dim3(threads), 0, nullptr, o);
        else throw std::invalid_argument("faulty: unknown kernel " + which);
        return out;
    });

    t.def("stack", [](int threads, int floats) {
        farr out(threads);
        PYGAN_LAUNCH(k_stack, dim3(1), dim3(threads), 0, nullptr, out.mutable_data(), floats);
        return out;
    });

    t.def("tiled_gemm", [](farr a, farr b, bool barrier1, bool barrier2) {
        const int n = static_cast<int>(std::lround(std::sqrt(static_cast<double>(a.size()))));
        if (n % 16 || a.size() != n * n || b.size() != a.size()) throw std::invalid_argument("tiled_gemm: n×n, n % 16 == 0");
        farr c(a.size());
        const dim3 grid(n / 16, n / 16), block(16, 16);
        if (barrier1 && barrier2) PYGAN_LAUNCH((k_tiled_gemm<true, true>), grid, block, 0, nullptr, a.data(), b.data(), c.mutable_data(), n);
        else if (barrier1) PYGAN_LAUNCH((k_tiled_gemm<true, false>), grid, block, 0, nullptr, a.data(), b.data(), c.mutable_data(), n);
        else if (barrier2) PYGAN_LAUNCH((k_tiled_gemm<false, true>), grid, block, 0, nullptr, a.data(), b.data(), c.mutable_data(), n);
        else PYGAN_LAUNCH((k_tiled_gemm<false, false>), grid, block, 0, nullptr, a.data(), b.data(), c.mutable_data(), n);
        return c;
    }, "a 16×16-tiled GEMM; dropping a barrier plants a shared-memory race");

    t.def("tree_sum", [](farr in, int threads, bool barrier) {
        if (in.size() % threads) throw std::invalid_argument("tree_sum: size not a multiple of threads");
        farr out(in.size() / threads);
        const dim3 grid(in.size() / threads), block(threads);
        if (barrier) PYGAN_LAUNCH(k_tree_sum<true>, grid, block, threads * sizeof(float), nullptr, in.data(), out.mutable_data());
        else PYGAN_LAUNCH(k_tree_sum<false>, grid, block, threads * sizeof(float), nullptr, in.data(), out.mutable_data());
        return out;
    });

    t.def("shared_histogram", [](iarr idx, bool plain_store) {
        iarr hist(8);
        const dim3 block(static_cast<unsigned>(idx.size()));
        if (plain_store) PYGAN_LAUNCH(k_shared_histogram<true>, dim3(1), block, 0, nullptr, idx.data(), hist.mutable_data());
        else PYGAN_LAUNCH(k_shared_histogram<false>, dim3(1), block, 0, nullptr, idx.data(), hist.mutable_data());
        return hist;
    });

    t.def("launch_empty", [](py::tuple grid, py::tuple block, size_t smem) {
        PYGAN_LAUNCH(k_nothing, to_dim3(grid), to_dim3(block), smem, nullptr);
    }, "launch-configuration checks only: raises before running for invalid sizes");
}
