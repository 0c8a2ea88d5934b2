// emu.h — the CUDA execution model on a CPU, for kernels compiled with -DPYGAN_EMU.
//
// Model (see docs/backends.md#the-emulator):
//   * A launch runs its blocks one after another on the calling OS thread.
//   * Each thread of a block is a fiber (ucontext, its own stack).  The block's scheduler resumes
//     every runnable fiber in turn; a fiber runs until it reaches a barrier (__syncthreads, a warp
//     sync) or returns.  When every live thread waits at __syncthreads they are all released;
//     when every lane a warp operation names waits at it, those lanes are released.
//   * Threads that exit while others wait at __syncthreads, or a set of waits that can never be
//     released (a deadlock), raise an error naming the kernel and the block — never a hang.
//   * __shared__ variables are function-local statics: one copy, used by the block that is
//     running (blocks never run concurrently).  Dynamic shared memory is a per-launch buffer.
//   * Warp = 32 consecutive threads (linear id x + y·Bx + z·Bx·By).  A shuffle publishes the lane's
//     value in a double-buffered slot, synchronises the warp, and reads the source lane's slot.
//   * atomicAdd is a plain read-modify-write (only one fiber runs at a time), marked atomic for
//     the race check.
//   * Shared-memory data races are reported (emu.cpp, "shared-memory race check").
// Not thread-safe: one launch at a time per process (the Python GIL is held during a launch).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

namespace pygan_emu {

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// The running fiber's coordinates (set by the scheduler before it resumes a fiber).
extern uint3 g_threadIdx, g_blockIdx;
extern dim3 g_blockDim, g_gridDim;
extern unsigned char* g_dynamic_smem;
extern unsigned g_tid;                   // linear thread id in the block

void launch(const char* name, dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body);
void syncthreads();
void syncwarp(unsigned mask);
void fail(const char* what);             // error from inside a kernel: abandons the launch
unsigned shfl_begin();                   // the calling thread's next slot parity (0/1)
std::uint64_t* shfl_slot(unsigned parity, unsigned tid);
unsigned block_threads();

template <class T>
T shfl(unsigned mask, T var, int src_lane_in_warp_or_minus1) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a large type");
    const unsigned tid = g_tid;
    const unsigned parity = shfl_begin();
    std::uint64_t raw = 0;
    std::memcpy(&raw, &var, sizeof(T));
    *shfl_slot(parity, tid) = raw;
    syncwarp(mask);
    if (src_lane_in_warp_or_minus1 < 0) return var;
    const unsigned src = tid - tid % 32u + static_cast<unsigned>(src_lane_in_warp_or_minus1);
    if (src >= block_threads()) return var;
    T out;
    std::memcpy(&out, shfl_slot(parity, src), sizeof(T));
    return out;
}

// Arguments are evaluated once, on the host, and copied into every thread's call (each fiber
// gets its own copy of the parameters, like a kernel's parameter space).
template <class Kernel, class... Args>
void launch_kernel(const char* name, dim3 grid, dim3 block, std::size_t smem, Kernel kernel, Args... args) {
    launch(name, grid, block, smem, [&]() { kernel(args...); });
}

}  // namespace pygan_emu

// --- the CUDA spelling -------------------------------------------------------------------------
using pygan_emu::dim3;
using pygan_emu::uint3;
typedef void* cudaStream_t;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)

#define threadIdx (static_cast<const ::pygan_emu::uint3&>(::pygan_emu::g_threadIdx))
#define blockIdx (static_cast<const ::pygan_emu::uint3&>(::pygan_emu::g_blockIdx))
#define blockDim (static_cast<const ::pygan_emu::dim3&>(::pygan_emu::g_blockDim))
#define gridDim (static_cast<const ::pygan_emu::dim3&>(::pygan_emu::g_gridDim))
constexpr int warpSize = 32;

#define PYGAN_EXTERN_SHARED(T, name) T* name = reinterpret_cast<T*>(::pygan_emu::g_dynamic_smem)
#define PYGAN_LAUNCH(kernel, grid, block, smem, stream, ...) \
    ::pygan_emu::launch_kernel(#kernel, (grid), (block), (smem), kernel, ##__VA_ARGS__)
#define PYGAN_LAST_ERROR() 0

inline void __syncthreads() { pygan_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { pygan_emu::syncwarp(mask); }

template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int lane = static_cast<int>(pygan_emu::g_tid % 32u);
    const int seg = lane - lane % width;
    const int src = lane + static_cast<int>(delta);
    return pygan_emu::shfl(mask, var, src < seg + width ? src : -1);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    const int lane = static_cast<int>(pygan_emu::g_tid % 32u);
    const int seg = lane - lane % width;
    const int src = lane ^ lane_mask;
    return pygan_emu::shfl(mask, var, src < seg + width ? src : -1);
}
template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    const int lane = static_cast<int>(pygan_emu::g_tid % 32u);
    const int seg = lane - lane % width;
    return pygan_emu::shfl(mask, var, seg + ((src_lane % width) + width) % width);
}

namespace pygan_emu {
float atomic_add(float* p, float v);
int atomic_add(int* p, int v);
unsigned atomic_add(unsigned* p, unsigned v);
}  // namespace pygan_emu
inline float atomicAdd(float* p, float v) { return pygan_emu::atomic_add(p, v); }
inline int atomicAdd(int* p, int v) { return pygan_emu::atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return pygan_emu::atomic_add(p, v); }

// expf, log1pf, sqrtf, fmaxf, … are the C library's (global namespace, from <math.h>).
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
