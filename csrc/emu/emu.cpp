// emu.cpp — the block scheduler of the CUDA emulator (see emu.h for the model).
#include "emu.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace pygan_emu {

uint3 g_threadIdx{0, 0, 0}, g_blockIdx{0, 0, 0};
dim3 g_blockDim, g_gridDim;
unsigned char* g_dynamic_smem = nullptr;
unsigned g_tid = 0;

namespace {

enum State { kReady, kAtBarrier, kAtWarp, kDone };

struct Fiber {
    ucontext_t ctx;
    State state = kDone;
    unsigned warp_mask = 0;     // lanes named by the warp operation it waits at
    unsigned shfl_count = 0;    // shuffles done (slot parity)
};

constexpr std::size_t kMaxThreads = 1024;
constexpr std::size_t kMaxDynamicSmem = 227 * 1024;   // an H100's opt-in maximum per block

std::size_t stack_bytes() {
    static std::size_t bytes = [] {
        std::size_t kb = 128;
        if (const char* e = std::getenv("PYGAN_EMU_STACK_KB")) kb = std::strtoul(e, nullptr, 10);
        if (kb < 64) kb = 64;
        return kb * 1024;
    }();
    return bytes;
}

// One stack per thread slot, allocated on first use and kept: [guard page | stack].
struct StackPool {
    std::vector<char*> stacks;
    std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    char* get(std::size_t i) {
        while (stacks.size() <= i) {
            const std::size_t total = stack_bytes() + page;
            void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (p == MAP_FAILED) throw std::runtime_error("cuda emulator: cannot allocate a fiber stack");
            mprotect(p, page, PROT_NONE);       // overflow faults instead of corrupting a neighbour
            stacks.push_back(static_cast<char*>(p) + page);
        }
        return stacks[i];
    }
};

StackPool g_stacks;
std::vector<Fiber> g_fibers(kMaxThreads);
std::vector<std::uint64_t> g_shfl(2 * kMaxThreads);
std::vector<unsigned char> g_dyn;
ucontext_t g_sched;
unsigned g_nthreads = 0;
const std::function<void()>* g_body = nullptr;
std::string g_error;            // set by a fiber that failed; the scheduler throws it
bool g_in_launch = false;

void fiber_main() {
    (*g_body)();
    Fiber& f = g_fibers[g_tid];
    f.state = kDone;
    swapcontext(&f.ctx, &g_sched);
    std::abort();               // a finished fiber is never resumed
}

void yield_to_scheduler() {
    Fiber& f = g_fibers[g_tid];
    swapcontext(&f.ctx, &g_sched);
}

std::string where(const char* name) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "kernel %s, block (%u,%u,%u) of grid (%u,%u,%u), block size (%u,%u,%u)",
                  name, g_blockIdx.x, g_blockIdx.y, g_blockIdx.z, g_gridDim.x, g_gridDim.y, g_gridDim.z,
                  g_blockDim.x, g_blockDim.y, g_blockDim.z);
    return buf;
}

void set_thread(unsigned t) {
    g_tid = t;
    g_threadIdx.x = t % g_blockDim.x;
    g_threadIdx.y = (t / g_blockDim.x) % g_blockDim.y;
    g_threadIdx.z = t / (g_blockDim.x * g_blockDim.y);
}

// Release warps whose named lanes all wait; returns how many fibers were released.
unsigned release_warps(const char* name) {
    unsigned released = 0;
    for (unsigned base = 0; base < g_nthreads; base += 32) {
        const unsigned lanes = std::min(32u, g_nthreads - base);
        unsigned named = 0, waiting = 0, done = 0;
        for (unsigned l = 0; l < lanes; ++l) {
            const Fiber& f = g_fibers[base + l];
            if (f.state == kAtWarp) { waiting |= 1u << l; named |= f.warp_mask; }
            if (f.state == kDone) done |= 1u << l;
        }
        if (!waiting) continue;
        const unsigned exists = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
        named &= exists;
        if (named & done) {
            char buf[200];
            std::snprintf(buf, sizeof buf, ": a warp operation (shuffle/__syncwarp) in warp %u names lanes "
                          "(mask 0x%08x) of which 0x%08x have exited", base / 32, named, named & done);
            throw std::runtime_error(where(name) + buf);
        }
        if ((named & ~waiting) == 0) {
            for (unsigned l = 0; l < lanes; ++l)
                if (waiting & (1u << l)) { g_fibers[base + l].state = kReady; ++released; }
        }
    }
    return released;
}

void run_block(const char* name) {
    const unsigned n = g_nthreads;
    ucontext_t proto;
    getcontext(&proto);
    for (unsigned t = 0; t < n; ++t) {
        Fiber& f = g_fibers[t];
        f.ctx = proto;
        f.ctx.uc_stack.ss_sp = g_stacks.get(t);
        f.ctx.uc_stack.ss_size = stack_bytes();
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, fiber_main, 0);
        f.state = kReady;
        f.warp_mask = 0;
        f.shfl_count = 0;
    }
    for (;;) {
        for (unsigned t = 0; t < n; ++t) {
            Fiber& f = g_fibers[t];
            if (f.state != kReady) continue;
            set_thread(t);
            swapcontext(&g_sched, &f.ctx);
            if (!g_error.empty()) {
                std::string msg = where(name) + ", thread (" + std::to_string(g_threadIdx.x) + "," +
                                  std::to_string(g_threadIdx.y) + "," + std::to_string(g_threadIdx.z) + "): " + g_error;
                g_error.clear();
                throw std::runtime_error(msg);
            }
        }
        unsigned done = 0, at_bar = 0, at_warp = 0;
        for (unsigned t = 0; t < n; ++t) {
            const State s = g_fibers[t].state;
            done += s == kDone; at_bar += s == kAtBarrier; at_warp += s == kAtWarp;
        }
        if (done == n) return;
        if (at_warp && release_warps(name)) continue;
        if (at_bar && at_bar + done == n) {
            if (done) {
                throw std::runtime_error(where(name) + ": threads diverged at __syncthreads(): " +
                    std::to_string(done) + " of " + std::to_string(n) + " threads exited while " +
                    std::to_string(at_bar) + " wait at a barrier (every thread of a block must reach "
                    "each __syncthreads(); an early `return` before one is the usual cause)");
            }
            for (unsigned t = 0; t < n; ++t) g_fibers[t].state = kReady;
            continue;
        }
        throw std::runtime_error(where(name) + ": deadlock: " + std::to_string(at_bar) +
            " threads wait at __syncthreads(), " + std::to_string(at_warp) +
            " at a warp operation whose lanes never all arrive, " + std::to_string(done) + " exited");
    }
}

struct LaunchGuard {
    LaunchGuard() { g_in_launch = true; }
    ~LaunchGuard() { g_in_launch = false; g_body = nullptr; }
};

}  // namespace

void launch(const char* name, dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body) {
    if (g_in_launch) throw std::runtime_error(std::string("kernel ") + name + ": launched from inside a kernel "
                                              "(dynamic parallelism is not emulated)");
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (threads == 0 || threads > kMaxThreads || block.z > 64)
        throw std::runtime_error(std::string("kernel ") + name + ": invalid block size (" + std::to_string(block.x) +
                                 "," + std::to_string(block.y) + "," + std::to_string(block.z) +
                                 "): at most 1024 threads, z ≤ 64");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
        throw std::runtime_error(std::string("kernel ") + name + ": invalid grid (" + std::to_string(grid.x) + "," +
                                 std::to_string(grid.y) + "," + std::to_string(grid.z) + ")");
    if (smem > kMaxDynamicSmem)
        throw std::runtime_error(std::string("kernel ") + name + ": " + std::to_string(smem) +
                                 " bytes of dynamic shared memory exceed the per-block maximum");
    LaunchGuard guard;
    g_body = &body;
    g_nthreads = static_cast<unsigned>(threads);
    g_blockDim = block;
    g_gridDim = grid;
    if (g_dyn.size() < smem + 16) g_dyn.resize(smem + 16);
    g_dynamic_smem = g_dyn.data();
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                g_blockIdx = uint3{x, y, z};
                run_block(name);
            }
}

void syncthreads() {
    g_fibers[g_tid].state = kAtBarrier;
    yield_to_scheduler();
}

void syncwarp(unsigned mask) {
    Fiber& f = g_fibers[g_tid];
    f.state = kAtWarp;
    f.warp_mask = mask;
    yield_to_scheduler();
}

void fail(const char* what) {
    g_error = what && *what ? what : "kernel error";
    g_fibers[g_tid].state = kDone;
    yield_to_scheduler();
    std::abort();
}

unsigned shfl_begin() { return g_fibers[g_tid].shfl_count++ & 1u; }
std::uint64_t* shfl_slot(unsigned parity, unsigned tid) { return &g_shfl[parity * kMaxThreads + tid]; }
unsigned block_threads() { return g_nthreads; }

}  // namespace pygan_emu
