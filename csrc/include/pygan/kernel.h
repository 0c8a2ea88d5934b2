// pygan/kernel.h — the one header a kernel file (csrc/kernels/*.cu) includes.
//
// It lets the same source compile two ways:
//   * under nvcc (__CUDACC__ defined): real CUDA; PYGAN_LAUNCH is <<<grid, block, smem, stream>>>.
//   * under a C++ compiler with PYGAN_EMU defined: the CPU emulator of csrc/emu runs each block's
//     threads as fibers; __syncthreads(), shared memory, warp shuffles and atomics are emulated.
//
// What a kernel may use (and nothing else of CUDA, so that both builds stay equal):
//   __global__ __device__ __host__ __forceinline__ __restrict__ __shared__ (static sizes),
//   PYGAN_EXTERN_SHARED(T, name) for dynamic shared memory (`extern __shared__ T name[]`),
//   threadIdx blockIdx blockDim gridDim warpSize, __syncthreads() __syncwarp(),
//   __shfl_down_sync __shfl_xor_sync, atomicAdd(float*/int*), and the float math of <cmath>
//   (expf, log1pf, sqrtf, fmaxf, fminf, fabsf, tanhf, rsqrtf, fmaf), min/max on ints.
// Host launchers (one per entry point, at the end of each .cu) compute the grid and launch with
// PYGAN_LAUNCH(kernel, grid, block, smem, stream, args...); they return PYGAN_LAST_ERROR().
#pragma once

#include <cstdint>
#include <cstddef>

#if defined(__CUDACC__)
// ------------------------------------------------------------------------- real CUDA ----------
#include <cuda_runtime.h>
#define PYGAN_EXTERN_SHARED(T, name)                                               \
    extern __shared__ __align__(16) unsigned char pygan_dynamic_smem_[];           \
    T* name = reinterpret_cast<T*>(pygan_dynamic_smem_)
#define PYGAN_LAUNCH(kernel, grid, block, smem, stream, ...) \
    kernel<<<(grid), (block), (smem), static_cast<cudaStream_t>(stream)>>>(__VA_ARGS__)
#define PYGAN_LAST_ERROR() static_cast<int>(cudaGetLastError())

#elif defined(PYGAN_EMU)
// ------------------------------------------------------------------------- CPU emulator --------
#include "../../emu/emu.h"

#else
#error "pygan/kernel.h: compile kernels with nvcc, or with -DPYGAN_EMU for the CPU emulator"
#endif

namespace pygan {

constexpr int kWarp = 32;

// Sum of v over the 32 lanes of a warp (lane 0 holds the result): 5 shuffle steps.
__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

// Sum of v over the block (blockDim.x threads, a multiple of 32, at most 1024); every thread must
// call it.  Warp shuffles, then one warp reduces the 32 warp sums.  Thread 0 holds the result;
// `scratch` is 32 floats of shared memory.  Deterministic: a fixed reduction tree.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const unsigned nwarps = blockDim.x / kWarp;
    v = warp_sum(v);
    __syncthreads();                     // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = (threadIdx.x < nwarps) ? scratch[threadIdx.x] : 0.0f;
    if (warp == 0) v = warp_sum(v);
    return v;
}

inline unsigned ceil_div(long long a, long long b) { return static_cast<unsigned>((a + b - 1) / b); }

}  // namespace pygan

#include "launchers.h"
