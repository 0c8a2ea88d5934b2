// batchnorm.cu — the reductions of batch normalisation over (N, S) per channel, x (N, C, S).
//
//   bn_stats            mean[c] = Σ x / M,  var[c] = Σ (x − mean)² / M  (biased, M = N·S)
//   bn_backward_reduce  sum_gy[c] = Σ gy,  sum_gy_xhat[c] = Σ gy·(x − mean)·invstd
// from which the layer forms ∂L/∂γ = sum_gy_xhat, ∂L/∂β = sum_gy and
// ∂L/∂x = γ·invstd·(gy − sum_gy/M − x̂·sum_gy_xhat/M)  (docs/gradients.md#batchnorm).
//
// One block per channel, 256 threads; each thread walks a strided subset of the channel's M
// elements (contiguous runs of S in NCHW), then the warp-shuffle block reduction of
// pygan/kernel.h.  The variance is two-pass (mean first, then squared deviations, x read twice)
// rather than E[x²] − E[x]², which cancels catastrophically in float32 when |mean| ≫ std.
// Fixed reduction order: deterministic, no atomics.
//
// Traffic and fraction of peak (on paper): stats read x twice (8 B/element), backward reads gy
// and x once (8 B/element); ≈ 3 FLOP/element, so bandwidth-bound.  One block per channel
// exposes only C blocks: W2's C = 64/128 channels put one block on 64–128 of the 108 (A100) /
// 132 (H100) SMs, each streaming M = 64·196 = 12.5k–50k elements — latency-bound at ≈ 20–40 %
// of DRAM bandwidth.  Splitting each channel over several blocks (a second reduction pass)
// would fill the machine for small C.
#include "pygan/kernel.h"

namespace pygan {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
bn_stats_kernel(const float* __restrict__ x, float* __restrict__ mean, float* __restrict__ var,
                long long N, int C, long long S) {
    __shared__ float scratch[32];
    __shared__ float mu_shared;
    const int c = blockIdx.x;
    const long long M = N * S;
    float acc = 0.0f;
    for (long long r = threadIdx.x; r < M; r += blockDim.x) acc += x[((r / S) * C + c) * S + r % S];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) mu_shared = acc / static_cast<float>(M);
    __syncthreads();
    const float mu = mu_shared;
    float sq = 0.0f;
    for (long long r = threadIdx.x; r < M; r += blockDim.x) {
        const float d = x[((r / S) * C + c) * S + r % S] - mu;
        sq += d * d;
    }
    sq = block_sum(sq, scratch);
    if (threadIdx.x == 0) {
        mean[c] = mu;
        var[c] = sq / static_cast<float>(M);
    }
}

__global__ void __launch_bounds__(kThreads)
bn_backward_reduce_kernel(const float* __restrict__ gy, const float* __restrict__ x,
                          const float* __restrict__ mean, const float* __restrict__ invstd,
                          float* __restrict__ sum_gy, float* __restrict__ sum_gy_xhat,
                          long long N, int C, long long S) {
    __shared__ float scratch[32];
    const int c = blockIdx.x;
    const long long M = N * S;
    const float mu = mean[c], is = invstd[c];
    float a = 0.0f, b = 0.0f;
    for (long long r = threadIdx.x; r < M; r += blockDim.x) {
        const long long e = ((r / S) * C + c) * S + r % S;
        const float g = gy[e];
        a += g;
        b += g * (x[e] - mu);
    }
    a = block_sum(a, scratch);
    if (threadIdx.x == 0) sum_gy[c] = a;
    b = block_sum(b, scratch);               // block_sum syncs before reusing scratch
    if (threadIdx.x == 0) sum_gy_xhat[c] = b * is;
}

}  // namespace

int bn_stats(const float* x, float* mean, float* var, long long N, int C, long long S, void* stream) {
    if (C == 0) return 0;
    PYGAN_LAUNCH(bn_stats_kernel, dim3(C), dim3(kThreads), 0, stream, x, mean, var, N, C, S);
    return PYGAN_LAST_ERROR();
}

int bn_backward_reduce(const float* gy, const float* x, const float* mean, const float* invstd, float* sum_gy,
                       float* sum_gy_xhat, long long N, int C, long long S, void* stream) {
    if (C == 0) return 0;
    PYGAN_LAUNCH(bn_backward_reduce_kernel, dim3(C), dim3(kThreads), 0, stream, gy, x, mean, invstd, sum_gy,
                 sum_gy_xhat, N, C, S);
    return PYGAN_LAST_ERROR();
}

}  // namespace pygan
