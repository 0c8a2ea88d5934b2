// conv.cu — 2-D convolution (cross-correlation, PyTorch's layout) as im2col/col2im + sgemm.
//
// Shapes: x (N, C, H, W), w (O, C, kh, kw), y (N, O, OH, OW), P = OH·OW, K = C·kh·kw.
// The patch matrix of image n is cols[n] (K, P): row k = (c, i, j) in w's own order, so w is
// used as the (O, K) matrix it already is (no reordering), and every product reads and writes
// NCHW directly (no transposes):
//
//   forward          y[n]  (O, P) = W (O, K) · cols[n] (K, P)          NN, batched over n (W shared)
//   backward-data    D[n]  (K, P) = Wᵀ (K, O) · gy[n] (O, P)           TN, batched;  gx = col2im(D)
//   backward-filter  gW    (O, K) = Σₙ gy[n] (O, P) · cols[n]ᵀ (P, K)  NT, one GEMM per image with
//                                                                       β = 1 after the first: the
//                                                                       batch sum is in a fixed order
//
// im2col   one thread per element of cols (N·K·P): consecutive threads write consecutive p
//          (coalesced) and read x at stride sw (L1/L2 absorb the kh·kw/(sh·sw) re-reads).
// col2im   a *gather*, one thread per element of gx: it sums the ≤ ⌈kh/sh⌉·⌈kw/sw⌉ entries of D
//          that cover its pixel, hp = h + ph = sh·oh + i ⇒ i ≡ hp (mod sh).  Each output is written
//          once by one thread: deterministic, race-free, no atomics (DeZero's GPU col2im).
//
// Memory traffic and fraction of peak (on paper), W3's D convolutions, batch 64, k4 s2 p1:
//   conv 64→128 @14² (OH = 7): K = 1024, P = 49, 822 MFLOP per pass.  cols = 64·1024·49·4 B =
//     12.8 MB written by im2col and read once by the GEMM (A100: ≈ 17 µs at 1.5 TB/s; it fits
//     in L2 on H100).  The GEMMs are 128×49×1024 per image: one 64-wide column tile (49/64 used)
//     × 2 row tiles × 64 images = 128 blocks ≈ 1.2 waves on 108 SMs.  Forward/backward-data:
//     ≈ 30–40 % of FP32 peak on A100 (≈ 6–8 TFLOP/s), 20–30 % on H100.  Backward-filter runs
//     64 sequential 128×1024×49 GEMMs of 32 blocks each (≈ 30 % of the SMs busy, plus 64 launch
//     overheads ≈ 0.2 ms): ≈ 10–15 % of peak.  Folding the batch into the GEMM's K loop (one
//     GEMM with K = N·P) is the known next step.
//   conv 1→64 @28² (OH = 14): K = 16, P = 196, 25.7 MFLOP, ≈ 4.2 MB moved (x 0.2, cols 0.8,
//     y 3.2 MB): 6 FLOP/B, so memory-bound (≤ 6·1.55/19.5 ≈ 48 % of A100 FP32 peak even with
//     perfect bandwidth) and in practice launch-latency-bound at ≈ 10 µs: ≈ 10–20 % of peak.
#include "pygan/kernel.h"

namespace pygan {
namespace {

constexpr int kThreads = 256;

__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ cols, long long total,
                              int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                              int OH, int OW) {
    for (long long e = blockIdx.x * 1ll * blockDim.x + threadIdx.x; e < total;
         e += 1ll * gridDim.x * blockDim.x) {
        const int P = OH * OW, K = C * kh * kw;
        const int p = static_cast<int>(e % P);
        const long long nk = e / P;
        const int k = static_cast<int>(nk % K);
        const long long n = nk / K;
        const int j = k % kw, i = (k / kw) % kh, c = k / (kw * kh);
        const int oh = p / OW, ow = p % OW;
        const int h = oh * sh + i - ph, w = ow * sw + j - pw;
        float v = 0.0f;
        if (h >= 0 && h < H && w >= 0 && w < W) v = x[((n * C + c) * H + h) * W + w];
        cols[e] = v;
    }
}

__global__ void col2im_kernel(const float* __restrict__ cols, float* __restrict__ x, long long total,
                              int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                              int OH, int OW) {
    for (long long e = blockIdx.x * 1ll * blockDim.x + threadIdx.x; e < total;
         e += 1ll * gridDim.x * blockDim.x) {
        const int w = static_cast<int>(e % W);
        const int h = static_cast<int>((e / W) % H);
        const long long nc = e / (1ll * W * H);
        const int c = static_cast<int>(nc % C);
        const long long n = nc / C;
        const int P = OH * OW, K = C * kh * kw;
        const float* d = cols + n * K * P + 1ll * c * kh * kw * P;
        const int hp = h + ph, wp = w + pw;
        float acc = 0.0f;
        // i ≡ hp (mod sh), oh = (hp − i)/sh in [0, OH): walk i = hp mod sh, +sh, … while oh ≥ 0
        for (int i = hp % sh; i < kh && i <= hp; i += sh) {
            const int oh = (hp - i) / sh;
            if (oh >= OH) continue;
            for (int j = wp % sw; j < kw && j <= wp; j += sw) {
                const int ow = (wp - j) / sw;
                if (ow >= OW) continue;
                acc += d[(i * kw + j) * 1ll * P + oh * OW + ow];
            }
        }
        x[e] = acc;
    }
}

unsigned grid_for(long long total) {
    const long long blocks = (total + kThreads - 1) / kThreads;
    return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

int out_size(int size, int k, int s, int p) { return (size + 2 * p - k) / s + 1; }

}  // namespace

int im2col(const float* x, float* cols, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int OH, int OW, void* stream) {
    const long long total = 1ll * N * C * kh * kw * OH * OW;
    if (total == 0) return 0;
    PYGAN_LAUNCH(im2col_kernel, dim3(grid_for(total)), dim3(kThreads), 0, stream,
                 x, cols, total, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW);
    return PYGAN_LAST_ERROR();
}

int col2im(const float* cols, float* x, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int OH, int OW, void* stream) {
    const long long total = 1ll * N * C * H * W;
    if (total == 0) return 0;
    PYGAN_LAUNCH(col2im_kernel, dim3(grid_for(total)), dim3(kThreads), 0, stream,
                 cols, x, total, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW);
    return PYGAN_LAST_ERROR();
}

int conv2d_forward(const float* x, const float* w, float* y, float* cols, int N, int C, int H, int W,
                   int O, int kh, int kw, int sh, int sw, int ph, int pw, void* stream) {
    const int OH = out_size(H, kh, sh, ph), OW = out_size(W, kw, sw, pw);
    const int K = C * kh * kw, P = OH * OW;
    if (int err = im2col(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, stream)) return err;
    return sgemm(1, false, false, O, P, K, 1.0f, w, K, 0, cols, P, 1ll * K * P, 0.0f,
                 y, P, 1ll * O * P, N, stream);
}

int conv2d_backward_input(const float* gy, const float* w, float* gx, float* cols, int N, int C, int H,
                          int W, int O, int kh, int kw, int sh, int sw, int ph, int pw, void* stream) {
    const int OH = out_size(H, kh, sh, ph), OW = out_size(W, kw, sw, pw);
    const int K = C * kh * kw, P = OH * OW;
    if (int err = sgemm(1, true, false, K, P, O, 1.0f, w, K, 0, gy, P, 1ll * O * P, 0.0f,
                        cols, P, 1ll * K * P, N, stream)) return err;
    return col2im(cols, gx, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, stream);
}

int conv2d_backward_weight(const float* x, const float* gy, float* gw, float* cols, int N, int C, int H,
                           int W, int O, int kh, int kw, int sh, int sw, int ph, int pw, void* stream) {
    const int OH = out_size(H, kh, sh, ph), OW = out_size(W, kw, sw, pw);
    const int K = C * kh * kw, P = OH * OW;
    if (int err = im2col(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, stream)) return err;
    for (int n = 0; n < N; ++n) {
        if (int err = sgemm(1, false, true, O, K, P, 1.0f, gy + 1ll * n * O * P, P, 0,
                            cols + 1ll * n * K * P, P, 0, n == 0 ? 0.0f : 1.0f, gw, K, 0, 1, stream))
            return err;
    }
    return 0;
}

}  // namespace pygan
