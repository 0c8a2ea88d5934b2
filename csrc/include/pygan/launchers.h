// pygan/launchers.h — host entry points of csrc/kernels, as the bindings call them.
//
// Plain C++ (no CUDA types), so the pybind11 bindings compile with the host compiler for both
// modules: pointers are device pointers for pygan._cuda and host pointers for pygan._cuda_emu;
// `stream` is a cudaStream_t (CuPy's current stream) or ignored by the emulator.  Every launcher
// returns a status: 0 on success, else a cudaError_t (see error_string).  The emulator reports
// its errors (barrier divergence, deadlock, bad launch) as C++ exceptions instead.
// All arrays are float32, row-major / NCHW, contiguous unless a leading dimension says otherwise.
#pragma once
#include <cstdint>

namespace pygan {

// --- runtime.cu ---------------------------------------------------------------------------
const char* error_string(int status);
int device_synchronize();
// name, multiprocessors, clock (kHz), compute capability major/minor; status
int device_info(char* name, int name_len, int* sms, int* clock_khz, int* cc_major, int* cc_minor);

// --- gemm.cu --------------------------------------------------------------------------------
// C[b] = alpha · op(A[b]) · op(B[b]) + beta · C[b] for b < batch, row-major;
// op(A) is M×K (A stored M×K with lda ≥ K, or K×M with lda ≥ M when trans_a), op(B) is K×N.
// A[b] = A + b·stride_a (stride 0 broadcasts one matrix).  beta == 0 never reads C.
// Cases NN, NT and TN; algo 0 = naive (one thread per output, the reference), 1 = tiled.
int sgemm(int algo, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
          const float* A, long long lda, long long stride_a,
          const float* B, long long ldb, long long stride_b, float beta,
          float* C, long long ldc, long long stride_c, int batch, void* stream);

// --- conv.cu --------------------------------------------------------------------------------
// x (N, C, H, W), w (O, C, kh, kw), y (N, O, OH, OW); cols is workspace of N·C·kh·kw·OH·OW floats.
int im2col(const float* x, float* cols, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int OH, int OW, void* stream);
int col2im(const float* cols, float* x, int N, int C, int H, int W, int kh, int kw,
           int sh, int sw, int ph, int pw, int OH, int OW, void* stream);
int conv2d_forward(const float* x, const float* w, float* y, float* cols,
                   int N, int C, int H, int W, int O, int kh, int kw,
                   int sh, int sw, int ph, int pw, void* stream);
int conv2d_backward_input(const float* gy, const float* w, float* gx, float* cols,
                          int N, int C, int H, int W, int O, int kh, int kw,
                          int sh, int sw, int ph, int pw, void* stream);
int conv2d_backward_weight(const float* x, const float* gy, float* gw, float* cols,
                           int N, int C, int H, int W, int O, int kh, int kw,
                           int sh, int sw, int ph, int pw, void* stream);

// --- losses.cu ------------------------------------------------------------------------------
// One pass over the n logits x: grad[i] = ∂(term)/∂x[i] (already scaled by weight/n) and
// *sum = Σ t(x[i]) (unscaled; the value is weight·sum/n, ½·weight·sum/n for kind 3).
// kind 0 softplus t = sp(s·x); 1 linear t = x; 2 hinge t = relu(1 + s·x); 3 square t = (x − a)².
// `partial` is workspace of loss_partial_count(n) floats.
enum LossKind { kLossSoftplus = 0, kLossLinear = 1, kLossHinge = 2, kLossSquare = 3 };
int loss_partial_count(long long n);
int gan_loss(int kind, const float* x, float* grad, float* partial, float* sum, long long n,
             float sign, float weight, float target, void* stream);

// --- bias_act.cu ----------------------------------------------------------------------------
// x, y (N, C, S) (S = 1 for Linear, H·W for conv); bias (C,) or null; y may alias x.
// act 0 identity, 1 relu, 2 leaky_relu(slope), 3 tanh, 4 sigmoid.
enum Act { kActNone = 0, kActRelu = 1, kActLeaky = 2, kActTanh = 3, kActSigmoid = 4 };
int bias_act_forward(const float* x, const float* bias, float* y, long long N, int C, long long S,
                     int act, float slope, void* stream);
// gx = gy · act'(from y); gbias[c] = Σ_{n,s} gx (null to skip); gx may alias gy.
int bias_act_backward(const float* gy, const float* y, float* gx, float* gbias, long long N, int C,
                      long long S, int act, float slope, void* stream);

// --- batchnorm.cu ---------------------------------------------------------------------------
// x (N, C, S): mean[c] and biased var[c] over (n, s), two passes (no E[x²] − E[x]² cancellation).
int bn_stats(const float* x, float* mean, float* var, long long N, int C, long long S, void* stream);
// sum_gy[c] = Σ gy,  sum_gy_xhat[c] = Σ gy·(x − mean[c])·invstd[c]  over (n, s).
int bn_backward_reduce(const float* gy, const float* x, const float* mean, const float* invstd,
                       float* sum_gy, float* sum_gy_xhat, long long N, int C, long long S, void* stream);

// --- adam.cu --------------------------------------------------------------------------------
// torch.optim.Adam's update on flat float32 arrays, in place (see adam.cu for the exact order).
// c1 = 1 − β₁ (lerp weight), c1c = 1 − c1, b2 = β₂, c2 = 1 − β₂, neg_step = −lr/(1 − β₁ᵗ),
// sqrt_bc2 = √(1 − β₂ᵗ); vmax null unless AMSGrad; g is read-only.
int adam_update(float* p, const float* g, float* m, float* v, float* vmax, long long n,
                float c1, float c1c, float b2, float c2, float neg_step, float sqrt_bc2, float eps,
                float weight_decay, void* stream);

}  // namespace pygan
