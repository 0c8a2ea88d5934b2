// emu.cpp — the block scheduler of the CUDA emulator (see emu.h for the model).
#include "emu.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unordered_map>
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

// ---------------------------------------------------------------- shared-memory race check ----
// The kernel files are compiled with -fsanitize=thread (setup.py), so every load and store they
// make calls __tsan_{read,write}N(address) below, with the
// instruction's address as the return address.  An access made while a fiber runs kernel code
// that falls in shared memory (this module's writable data, where the `__shared__` statics live,
// or the launch's dynamic shared memory) is checked against a shadow of the block's shared
// memory since its last barrier: per 4-byte word the last writer and up to two readers.  Two
// threads touching a word in one barrier interval, at least one writing and not both atomically,
// is a data race: the launch fails naming the kernel, the block, both threads, both source lines
// (addr2line on this module) and the address.  Threads of one warp are not ordered by
// __syncwarp here (no kernel relies on warp-synchronous shared memory).  PYGAN_EMU_RACECHECK=0
// turns the check off.  Reads of the emulator's own state (threadIdx, …) fall in the module's
// data too; they are never written by a fiber, so they never race.
struct Access { int tid = -1; std::uintptr_t pc = 0; bool atomic = false; };
struct Word { Access w, r1, r2; };
std::unordered_map<std::uintptr_t, Word> g_shadow;
bool g_race_on = [] { const char* e = std::getenv("PYGAN_EMU_RACECHECK"); return !(e && *e == '0'); }();
// volatile: fibers switch through swapcontext, across which the compiler may not keep it cached
volatile bool g_active = false; // a fiber of a launch is running kernel code
std::uintptr_t g_static_lo = 0, g_static_hi = 0, g_dyn_lo = 0, g_dyn_hi = 0;
unsigned g_barriers = 0;
std::string g_race;             // the race found; the scheduler throws it

int find_segment(struct dl_phdr_info* info, std::size_t, void* data) {
    auto* want = static_cast<std::uintptr_t*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_W)) continue;
        const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr, hi = lo + ph.p_memsz;
        if (want[0] >= lo && want[0] < hi) { want[1] = lo; want[2] = hi; return 1; }
    }
    return 0;
}

void race_block_start() {
    if (!g_static_hi) {
        std::uintptr_t q[3] = {reinterpret_cast<std::uintptr_t>(&g_static_lo), 0, 0};
        dl_iterate_phdr(find_segment, q);
        g_static_lo = q[1]; g_static_hi = q[2];
    }
    g_barriers = 0;
    g_shadow.clear();
}
void race_barrier() { ++g_barriers; g_shadow.clear(); }

std::string source_line(std::uintptr_t pc) {
    Dl_info info;
    char off[32];
    if (!dladdr(reinterpret_cast<void*>(pc), &info) || !info.dli_fname) {
        std::snprintf(off, sizeof off, "pc 0x%lx", static_cast<unsigned long>(pc));
        return off;
    }
    std::snprintf(off, sizeof off, "0x%lx", static_cast<unsigned long>(pc - 1 - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
    const std::string cmd = std::string("addr2line -C -f -e '") + info.dli_fname + "' " + off + " 2>/dev/null";
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[1024];
        std::string fn, loc;
        if (std::fgets(buf, sizeof buf, p)) fn = buf;
        if (std::fgets(buf, sizeof buf, p)) loc = buf;
        pclose(p);
        while (!fn.empty() && fn.back() == '\n') fn.pop_back();
        while (!loc.empty() && (loc.back() == '\n' || loc.back() == ' ')) loc.pop_back();
        if (const auto d = loc.find(" (discriminator"); d != std::string::npos) loc.resize(d);
        if (!loc.empty() && loc.find("??") == std::string::npos) return loc + " in " + fn;
    }
    return std::string(info.dli_fname) + "+" + off;
}

std::string thread_name(int tid) {
    const unsigned t = static_cast<unsigned>(tid);
    return "(" + std::to_string(t % g_blockDim.x) + "," + std::to_string((t / g_blockDim.x) % g_blockDim.y) + "," +
           std::to_string(t / (g_blockDim.x * g_blockDim.y)) + ")";
}

void report(const char* kind, const Access& a, const Access& b, std::uintptr_t word) {
    g_active = false;
    const bool dyn = word >= g_dyn_lo && word < g_dyn_hi;
    char addr[128];
    if (dyn) std::snprintf(addr, sizeof addr, "dynamic shared memory, byte offset %lu", static_cast<unsigned long>(word - g_dyn_lo));
    else std::snprintf(addr, sizeof addr, "static shared memory at 0x%lx", static_cast<unsigned long>(word));
    g_race = std::string("shared-memory data race (") + kind + ") on " + addr + ", between barriers " +
             std::to_string(g_barriers) + " and " + std::to_string(g_barriers + 1) + ": thread " + thread_name(a.tid) +
             (a.atomic ? " atomically at " : " at ") + source_line(a.pc) + "; thread " + thread_name(b.tid) +
             (b.atomic ? " atomically at " : " at ") + source_line(b.pc);
    fail("shared-memory data race");
}

void note(std::uintptr_t p, std::size_t size, bool write, bool atomic, std::uintptr_t pc) {
    if (!g_active) return;
    const bool in_static = p >= g_static_lo && p < g_static_hi;
    if (!in_static && !(p >= g_dyn_lo && p < g_dyn_hi)) return;
    const int tid = static_cast<int>(g_tid);
    const Access me{tid, pc, atomic};
    for (std::uintptr_t w = p & ~std::uintptr_t(3); w < p + size; w += 4) {
        Word& e = g_shadow[w];
        if (!write && !atomic) {
            if (e.w.tid >= 0 && e.w.tid != tid) return report("read after write", e.w, me, w);
            if (e.r1.tid < 0 || e.r1.tid == tid) e.r1 = me;
            else if (e.r2.tid < 0 || e.r2.tid == tid) e.r2 = me;
            continue;
        }
        if (e.w.tid >= 0 && e.w.tid != tid && !(atomic && e.w.atomic)) return report("write after write", e.w, me, w);
        for (const Access* r : {&e.r1, &e.r2})
            if (r->tid >= 0 && r->tid != tid) return report("write after read", *r, me, w);
        e.w = me;
        e.r1 = e.r2 = Access{};
    }
}

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
    race_block_start();
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
            g_active = g_race_on;
            swapcontext(&g_sched, &f.ctx);
            g_active = false;
            if (!g_race.empty()) {
                std::string msg = where(name) + ": " + g_race;
                g_race.clear();
                g_error.clear();
                throw std::runtime_error(msg);
            }
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
            race_barrier();
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
    g_dyn_lo = reinterpret_cast<std::uintptr_t>(g_dyn.data());
    g_dyn_hi = g_dyn_lo + smem;
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                g_blockIdx = uint3{x, y, z};
                run_block(name);
            }
}

void syncthreads() {
    g_active = false;
    g_fibers[g_tid].state = kAtBarrier;
    yield_to_scheduler();
}

void syncwarp(unsigned mask) {
    g_active = false;
    Fiber& f = g_fibers[g_tid];
    f.state = kAtWarp;
    f.warp_mask = mask;
    yield_to_scheduler();
}

void fail(const char* what) {
    g_active = false;
    g_error = what && *what ? what : "kernel error";
    g_fibers[g_tid].state = kDone;
    yield_to_scheduler();
    std::abort();
}

unsigned shfl_begin() { return g_fibers[g_tid].shfl_count++ & 1u; }
std::uint64_t* shfl_slot(unsigned parity, unsigned tid) { return &g_shfl[parity * kMaxThreads + tid]; }
unsigned block_threads() { return g_nthreads; }

float atomic_add(float* p, float v) { note(reinterpret_cast<std::uintptr_t>(p), 4, true, true, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))); const float o = *p; *p = o + v; return o; }
int atomic_add(int* p, int v) { note(reinterpret_cast<std::uintptr_t>(p), 4, true, true, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))); const int o = *p; *p = o + v; return o; }
unsigned atomic_add(unsigned* p, unsigned v) { note(reinterpret_cast<std::uintptr_t>(p), 4, true, true, reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))); const unsigned o = *p; *p = o + v; return o; }

}  // namespace pygan_emu

// The instrumentation's entry points: kernel code is compiled with -fsanitize=thread (setup.py),
// which calls these for every load and store (no sanitizer runtime is linked).
extern "C" {
#define PYGAN_EMU_PC reinterpret_cast<std::uintptr_t>(__builtin_return_address(0))
#define PYGAN_EMU_HOOK(n)                                                                                          \
    void __tsan_read##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, false, false, PYGAN_EMU_PC); } \
    void __tsan_write##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, true, false, PYGAN_EMU_PC); } \
    void __tsan_unaligned_read##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, false, false, PYGAN_EMU_PC); } \
    void __tsan_unaligned_write##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, true, false, PYGAN_EMU_PC); } \
    void __tsan_volatile_read##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, false, false, PYGAN_EMU_PC); } \
    void __tsan_volatile_write##n(void* p) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, true, false, PYGAN_EMU_PC); }
PYGAN_EMU_HOOK(1) PYGAN_EMU_HOOK(2) PYGAN_EMU_HOOK(4) PYGAN_EMU_HOOK(8) PYGAN_EMU_HOOK(16)
#undef PYGAN_EMU_HOOK
void __tsan_read_range(void* p, std::size_t n) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, false, false, PYGAN_EMU_PC); }
void __tsan_write_range(void* p, std::size_t n) { pygan_emu::note(reinterpret_cast<std::uintptr_t>(p), n, true, false, PYGAN_EMU_PC); }
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_init() {}
// atomics the C++ runtime's code in a kernel file uses (static-initialisation guards, reference counts)
char __tsan_atomic8_load(const volatile char* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }
int __tsan_atomic32_load(const volatile int* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); }
void __tsan_atomic8_store(volatile char* a, char v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); }
void __tsan_atomic32_store(volatile int* a, int v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); }
int __tsan_atomic32_fetch_add(volatile int* a, int v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
int __tsan_atomic32_fetch_sub(volatile int* a, int v, int) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); }
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
}
