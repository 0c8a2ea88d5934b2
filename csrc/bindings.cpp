// bindings.cpp — the pybind11 module over csrc/kernels: one function per launcher.
//
// Compiled twice by the host C++ compiler:
//   pygan._cuda      (PYGAN_MODULE=_cuda)      linked with the nvcc-built kernels; pointers are
//                                               device pointers (CuPy's .data.ptr), `stream` a
//                                               cudaStream_t as an integer (CuPy's stream .ptr).
//   pygan._cuda_emu  (PYGAN_MODULE=_cuda_emu, PYGAN_EMU) linked with the same kernels compiled by
//                                               the C++ compiler and the emulator; pointers are
//                                               host pointers (numpy's ctypes.data), stream ignored.
// Pointers travel as integers; shape and dtype checks are the Python backend's job
// (pygan/backend/cuda_emu.py, cuda.py).  A failing launch raises RuntimeError.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "pygan/launchers.h"

#ifndef PYGAN_MODULE
#error "define PYGAN_MODULE (_cuda or _cuda_emu)"
#endif

namespace py = pybind11;
using ptr = std::uintptr_t;

namespace {

template <class T = float>
T* P(ptr p) { return reinterpret_cast<T*>(p); }
void* S(ptr s) { return reinterpret_cast<void*>(s); }

void check(int status, const char* what) {
    if (status != 0)
        throw std::runtime_error(std::string("pygan CUDA kernel ") + what + " failed: " + pygan::error_string(status) +
                                 " (status " + std::to_string(status) + ")");
}

}  // namespace

#ifdef PYGAN_EMU
void register_emulator_tests(py::module_& m);   // csrc/emu/test_kernels.cpp
#endif

PYBIND11_MODULE(PYGAN_MODULE, m) {
#ifdef PYGAN_EMU
    m.doc() = "pygan's CUDA kernels (csrc/kernels) run by the CPU emulator of the CUDA execution model";
    m.attr("emulated") = true;
    register_emulator_tests(m);
#else
    m.doc() = "pygan's CUDA kernels (csrc/kernels), built with nvcc";
    m.attr("emulated") = false;
#endif

    m.def("synchronize", [] { check(pygan::device_synchronize(), "synchronize"); });
    m.def("device_info", [] {
        char name[256];
        int sms = 0, clock = 0, major = 0, minor = 0;
        check(pygan::device_info(name, sizeof name, &sms, &clock, &major, &minor), "device_info");
        py::dict d;
        d["name"] = std::string(name);
        d["multiprocessors"] = sms;
        d["clock_khz"] = clock;
        d["compute_capability"] = py::make_tuple(major, minor);
        return d;
    });

    m.def("sgemm", [](int algo, bool ta, bool tb, int M, int N, int K, float alpha, ptr A, long long lda,
                      long long sa, ptr B, long long ldb, long long sb, float beta, ptr C, long long ldc,
                      long long sc, int batch, ptr stream) {
        check(pygan::sgemm(algo, ta, tb, M, N, K, alpha, P<const float>(A), lda, sa, P<const float>(B), ldb, sb,
                           beta, P(C), ldc, sc, batch, S(stream)), "sgemm");
    }, "C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b], row-major (see launchers.h)",
       py::arg("algo"), py::arg("trans_a"), py::arg("trans_b"), py::arg("M"), py::arg("N"), py::arg("K"),
       py::arg("alpha"), py::arg("A"), py::arg("lda"), py::arg("stride_a"), py::arg("B"), py::arg("ldb"),
       py::arg("stride_b"), py::arg("beta"), py::arg("C"), py::arg("ldc"), py::arg("stride_c"),
       py::arg("batch"), py::arg("stream") = 0);

    m.def("im2col", [](ptr x, ptr cols, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                       int OH, int OW, ptr stream) {
        check(pygan::im2col(P<const float>(x), P(cols), N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, S(stream)), "im2col");
    });
    m.def("col2im", [](ptr cols, ptr x, int N, int C, int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                       int OH, int OW, ptr stream) {
        check(pygan::col2im(P<const float>(cols), P(x), N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, S(stream)), "col2im");
    });
    m.def("conv2d_forward", [](ptr x, ptr w, ptr y, ptr cols, int N, int C, int H, int W, int O, int kh, int kw,
                               int sh, int sw, int ph, int pw, ptr stream) {
        check(pygan::conv2d_forward(P<const float>(x), P<const float>(w), P(y), P(cols), N, C, H, W, O, kh, kw, sh,
                                    sw, ph, pw, S(stream)), "conv2d_forward");
    });
    m.def("conv2d_backward_input", [](ptr gy, ptr w, ptr gx, ptr cols, int N, int C, int H, int W, int O, int kh,
                                      int kw, int sh, int sw, int ph, int pw, ptr stream) {
        check(pygan::conv2d_backward_input(P<const float>(gy), P<const float>(w), P(gx), P(cols), N, C, H, W, O, kh,
                                           kw, sh, sw, ph, pw, S(stream)), "conv2d_backward_input");
    });
    m.def("conv2d_backward_weight", [](ptr x, ptr gy, ptr gw, ptr cols, int N, int C, int H, int W, int O, int kh,
                                       int kw, int sh, int sw, int ph, int pw, ptr stream) {
        check(pygan::conv2d_backward_weight(P<const float>(x), P<const float>(gy), P(gw), P(cols), N, C, H, W, O, kh,
                                            kw, sh, sw, ph, pw, S(stream)), "conv2d_backward_weight");
    });

    m.def("loss_partial_count", &pygan::loss_partial_count);
    m.def("gan_loss", [](int kind, ptr x, ptr grad, ptr partial, ptr sum, long long n, float sign, float weight,
                         float target, ptr stream) {
        check(pygan::gan_loss(kind, P<const float>(x), P(grad), P(partial), P(sum), n, sign, weight, target,
                              S(stream)), "gan_loss");
    });

    m.def("bias_act_forward", [](ptr x, ptr bias, ptr y, long long N, int C, long long S_, int act, float slope,
                                 ptr stream) {
        check(pygan::bias_act_forward(P<const float>(x), P<const float>(bias), P(y), N, C, S_, act, slope, S(stream)),
              "bias_act_forward");
    });
    m.def("bias_act_backward", [](ptr gy, ptr y, ptr gx, ptr gbias, long long N, int C, long long S_, int act,
                                  float slope, ptr stream) {
        check(pygan::bias_act_backward(P<const float>(gy), P<const float>(y), P(gx), P(gbias), N, C, S_, act, slope,
                                       S(stream)), "bias_act_backward");
    });

    m.def("bn_stats", [](ptr x, ptr mean, ptr var, long long N, int C, long long S_, ptr stream) {
        check(pygan::bn_stats(P<const float>(x), P(mean), P(var), N, C, S_, S(stream)), "bn_stats");
    });
    m.def("bn_backward_reduce", [](ptr gy, ptr x, ptr mean, ptr invstd, ptr sum_gy, ptr sum_gy_xhat, long long N,
                                   int C, long long S_, ptr stream) {
        check(pygan::bn_backward_reduce(P<const float>(gy), P<const float>(x), P<const float>(mean),
                                        P<const float>(invstd), P(sum_gy), P(sum_gy_xhat), N, C, S_, S(stream)),
              "bn_backward_reduce");
    });

    m.def("adam_update", [](ptr p, ptr g, ptr mm, ptr v, ptr vmax, long long n, float c1, float c1c, float b2,
                            float c2, float neg_step, float sqrt_bc2, float eps, float wd, ptr stream) {
        check(pygan::adam_update(P(p), P<const float>(g), P(mm), P(v), P(vmax), n, c1, c1c, b2, c2, neg_step, sqrt_bc2,
                                 eps, wd, S(stream)), "adam_update");
    });
}
