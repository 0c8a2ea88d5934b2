// runtime.cu — the few host-side runtime calls the bindings need: error strings, synchronisation
// and the device's description (for the benchmark's fraction-of-peak figures).
#include "pygan/kernel.h"

#include <cstring>

namespace pygan {

#if defined(__CUDACC__)
const char* error_string(int status) { return cudaGetErrorString(static_cast<cudaError_t>(status)); }
int device_synchronize() { return static_cast<int>(cudaDeviceSynchronize()); }
int device_info(char* name, int name_len, int* sms, int* clock_khz, int* cc_major, int* cc_minor) {
    int dev = 0;
    if (cudaError_t e = cudaGetDevice(&dev)) return static_cast<int>(e);
    cudaDeviceProp prop;
    if (cudaError_t e = cudaGetDeviceProperties(&prop, dev)) return static_cast<int>(e);
    std::strncpy(name, prop.name, name_len - 1);
    name[name_len - 1] = '\0';
    *sms = prop.multiProcessorCount;
    int clock = 0;
    cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, dev);
    *clock_khz = clock;
    *cc_major = prop.major;
    *cc_minor = prop.minor;
    return 0;
}
#else
const char* error_string(int status) { return status ? "cuda emulator error" : "no error"; }
int device_synchronize() { return 0; }
int device_info(char* name, int name_len, int* sms, int* clock_khz, int* cc_major, int* cc_minor) {
    std::strncpy(name, "pygan CPU emulator", name_len - 1);
    name[name_len - 1] = '\0';
    *sms = 1; *clock_khz = 0; *cc_major = 0; *cc_minor = 0;
    return 0;
}
#endif

}  // namespace pygan
