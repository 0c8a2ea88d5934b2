// gemm.cu — single-precision GEMM, row-major: C = α·op(A)·op(B) + β·C, cases NN, NT, TN, batched.
//
// Build:  nvcc -O3 -arch=sm_80 -Icsrc/include -c csrc/kernels/gemm.cu      (GPU)
//         g++ -O2 -DPYGAN_EMU -Icsrc/include -x c++ -c csrc/kernels/gemm.cu (CPU emulator)
//
// v0  sgemm_naive   one thread per C element, a K-long dot product read straight from global
//     memory.  Per FMA it loads 2 floats (8 B): arithmetic intensity 0.25 FLOP/B against L1/L2.
//     Kept as the reference the tiled kernel is tested against; expect 1–3% of FP32 peak.
//
// v1  sgemm_tiled   a 64×64 tile of C per block of 64 threads; each thread owns an 8×8 register
//     block (64 accumulators).  The K loop walks in steps of BK = 8: the block copies a 64×8
//     slab of op(A) and an 8×64 slab of op(B) into shared memory (8 floats per thread each,
//     consecutive threads on consecutive addresses of whichever dimension is contiguous in
//     memory for that case, so the loads coalesce for N and T alike), then each thread reads
//     8 + 8 floats from shared memory and does 64 FMAs.  Out-of-range rows/columns load as 0,
//     so any M, N, K works (tests use primes and 1).  The A slab is stored k-major with a
//     4-float pad (row stride 68) so the transposing store of the NN case is conflict-free.
//
//   Traffic and intensity, per block per K step (2·64·64·8 = 65,536 FLOP):
//     global → shared  (64 + 64)·8·4 B = 4 KiB            → 16 FLOP/B (served mostly by L2)
//     shared → regs    64 threads · 16 floats · 4 B = 4 KiB → 16 FLOP/B per block,
//                      i.e. 64 FMA per 16 LDS.32 per thread (4 FMA per shared load).
//   Whole-problem intensity 2MNK / 4(MK + KN + MN): 171 FLOP/B at 1024³, 19 FLOP/B for W3's
//   64×6272×100, 9 FLOP/B for 256×128×128.
//
//   Fraction of peak (on paper; FP32 CUDA cores, no tensor cores / TF32):
//     A100 SXM  19.5 TFLOP/s, 64 FP32 lanes/SM → 2 warp-FMA/clk/SM, 1 warp-LDS/clk/SM.
//       Per k: 64 FMA take 32 clk, 16 LDS take 16 clk → FMA-bound; with 2 syncs per 8-deep K
//       step, no double buffering and ~8 resident 64-thread blocks/SM (≈100 regs/thread),
//       expect ≈ 60–70 % of peak (12–14 TFLOP/s) at 1024³–2048³.
//     H100 SXM  67 TFLOP/s, 128 FP32 lanes/SM → 4 warp-FMA/clk/SM, still 1 warp-LDS/clk/SM.
//       Per k: 64 FMA take 16 clk, 16 LDS take 16 clk → shared-load-bound at best parity;
//       expect ≈ 40–50 % of peak (27–33 TFLOP/s).  LDS.128 (float4) reads of the register
//       fragments would cut the 16 loads to 4 and is the next step (v2), then double-buffered
//       slabs (load k+1 while computing k) to drop one __syncthreads per step.
//     Small W3 shapes are latency/occupancy bound, not FLOP-bound: 256×128×128 is 8 blocks
//     on 108/132 SMs (< 8 % of the machine; a few µs, launch overhead included), and
//     64×6272×100 is 98 blocks with K = 100 (13 K steps): ≈ 20–30 % of peak.
#include "pygan/kernel.h"

namespace pygan {
namespace {

constexpr int BM = 64, BN = 64, BK = 8, TM = 8, TN = 8;
constexpr int kThreads = (BM / TM) * (BN / TN);   // 64
constexpr int kPadA = 4;

__global__ void sgemm_naive(bool ta, bool tb, int M, int N, int K, float alpha,
                            const float* __restrict__ A, long long lda, long long sa,
                            const float* __restrict__ B, long long ldb, long long sb, float beta,
                            float* __restrict__ C, long long ldc, long long sc) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (row >= M || col >= N) return;
    A += blockIdx.z * sa;
    B += blockIdx.z * sb;
    C += blockIdx.z * sc;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
        const float a = ta ? A[k * lda + row] : A[row * lda + k];
        const float b = tb ? B[col * ldb + k] : B[k * ldb + col];
        acc += a * b;
    }
    float* c = C + row * ldc + col;
    *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c;
}

template <bool TA, bool TB>
__global__ void __launch_bounds__(kThreads)
sgemm_tiled(int M, int N, int K, float alpha,
            const float* __restrict__ A, long long lda, long long sa,
            const float* __restrict__ B, long long ldb, long long sb, float beta,
            float* __restrict__ C, long long ldc, long long sc) {
    __shared__ float As[BK][BM + kPadA];   // As[k][m] = op(A)[m0 + m][k0 + k]
    __shared__ float Bs[BK][BN];           // Bs[k][n] = op(B)[k0 + k][n0 + n]
    const int tid = threadIdx.x;
    const int tx = tid % (BN / TN), ty = tid / (BN / TN);
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    A += blockIdx.z * sa;
    B += blockIdx.z * sb;
    C += blockIdx.z * sc;

    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
        // global → shared: 8 elements of each slab per thread, coalesced along the contiguous axis
        for (int r = 0; r < BM * BK / kThreads; ++r) {
            const int e = tid + r * kThreads;
            int m, k;
            if (TA) { k = e / BM; m = e % BM; }     // stored K×M: m contiguous
            else    { m = e / BK; k = e % BK; }     // stored M×K: k contiguous
            const int gm = m0 + m, gk = k0 + k;
            float a = 0.0f;
            if (gm < M && gk < K) a = TA ? A[gk * lda + gm] : A[gm * lda + gk];
            As[k][m] = a;
        }
        for (int r = 0; r < BK * BN / kThreads; ++r) {
            const int e = tid + r * kThreads;
            int n, k;
            if (TB) { n = e / BK; k = e % BK; }     // stored N×K: k contiguous
            else    { k = e / BN; n = e % BN; }     // stored K×N: n contiguous
            const int gn = n0 + n, gk = k0 + k;
            float b = 0.0f;
            if (gn < N && gk < K) b = TB ? B[gn * ldb + gk] : B[gk * ldb + gn];
            Bs[k][n] = b;
        }
        __syncthreads();
        // shared → registers → 64 FMA per k
        for (int k = 0; k < BK; ++k) {
            float a[TM], b[TN];
            for (int i = 0; i < TM; ++i) a[i] = As[k][ty * TM + i];
            for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx * TN + j];
            for (int i = 0; i < TM; ++i)
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();                    // the slabs are overwritten next step
    }
    for (int i = 0; i < TM; ++i) {
        const int gm = m0 + ty * TM + i;
        if (gm >= M) break;
        for (int j = 0; j < TN; ++j) {
            const int gn = n0 + tx * TN + j;
            if (gn >= N) break;
            float* c = C + gm * ldc + gn;
            *c = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;
        }
    }
}

template <bool TA, bool TB>
void launch_tiled(dim3 grid, void* stream, int M, int N, int K, float alpha, const float* A, long long lda,
                  long long sa, const float* B, long long ldb, long long sb, float beta, float* C,
                  long long ldc, long long sc) {
    PYGAN_LAUNCH((sgemm_tiled<TA, TB>), grid, dim3(kThreads), 0, stream,
                 M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
}

}  // namespace

int sgemm(int algo, bool ta, bool tb, int M, int N, int K, float alpha,
          const float* A, long long lda, long long sa, const float* B, long long ldb, long long sb,
          float beta, float* C, long long ldc, long long sc, int batch, void* stream) {
    if (M <= 0 || N <= 0 || batch <= 0) return 0;
    constexpr int kMaxZ = 65535;
    for (int b0 = 0; b0 < batch; b0 += kMaxZ) {
        const int nb = min(kMaxZ, batch - b0);
        const float* a = A + b0 * sa;
        const float* b = B + b0 * sb;
        float* c = C + b0 * sc;
        if (algo == 0) {
            const dim3 block(16, 16);
            const dim3 grid(ceil_div(N, 16), ceil_div(M, 16), nb);
            PYGAN_LAUNCH(sgemm_naive, grid, block, 0, stream,
                         ta, tb, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
        } else {
            const dim3 grid(ceil_div(N, BN), ceil_div(M, BM), nb);
            if (!ta && !tb)     launch_tiled<false, false>(grid, stream, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
            else if (!ta && tb) launch_tiled<false, true>(grid, stream, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
            else if (ta && !tb) launch_tiled<true, false>(grid, stream, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
            else                launch_tiled<true, true>(grid, stream, M, N, K, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
        }
        const int err = PYGAN_LAST_ERROR();
        if (err) return err;
    }
    return 0;
}

}  // namespace pygan
