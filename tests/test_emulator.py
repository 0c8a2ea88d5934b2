"""The CPU emulator of the CUDA execution model (csrc/emu), proved feature by feature with the
small test kernels compiled into pygan._cuda_emu (csrc/emu/test_kernels.cpp)."""
import numpy as np
import pytest

from pygan.backend.cuda_emu import _import_extension

_ext, _why = _import_extension()
if _ext is None:
    pytest.fail(f"the CUDA emulator tests need pygan._cuda_emu: {_why}", pytrace=False)
emu = _ext.testing


@pytest.mark.parametrize("grid,block", [((1,), (1,)), ((3, 2, 2), (4, 3, 2)), ((2, 1, 3), (32, 1, 1)),
                                        ((1, 1, 1), (8, 8, 16))])
def test_3d_grids_and_blocks_give_every_thread_its_coordinates(grid, block):
    g = tuple(grid) + (1,) * (3 - len(grid))
    b = tuple(block) + (1,) * (3 - len(block))
    out = emu.coords(tuple(grid), tuple(block))
    nb, nt = np.prod(g), np.prod(b)
    assert out.shape == (nb * nt, 12)
    idx = np.arange(nb * nt)
    t, blk = idx % nt, idx // nt
    expect_t = np.stack([t % b[0], (t // b[0]) % b[1], t // (b[0] * b[1])], 1)
    expect_b = np.stack([blk % g[0], (blk // g[0]) % g[1], blk // (g[0] * g[1])], 1)
    np.testing.assert_array_equal(out[:, 0:3], expect_t)
    np.testing.assert_array_equal(out[:, 3:6], expect_b)
    np.testing.assert_array_equal(out[:, 6:9], np.broadcast_to(b, (nb * nt, 3)))
    np.testing.assert_array_equal(out[:, 9:12], np.broadcast_to(g, (nb * nt, 3)))


@pytest.mark.parametrize("grid,block", [((2,), (5, 3, 2)), ((1,), (1024,)), ((3, 2), (7,)), ((1,), (1,))])
def test_syncthreads_makes_shared_memory_writes_visible_to_the_whole_block(rng, grid, block):
    n = int(np.prod(grid)) * int(np.prod(block))
    x = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(emu.reverse(x, grid, block), 2 * x)


@pytest.mark.parametrize("threads,shift", [(4, 1), (33, 7), (256, 255)])
def test_dynamic_shared_memory_is_shared_by_the_block(rng, threads, shift):
    x = rng.standard_normal(3 * threads).astype(np.float32)
    expect = np.roll(x.reshape(3, threads), -shift, axis=1).ravel()
    np.testing.assert_array_equal(emu.rotate(x, threads, shift), expect)


@pytest.mark.parametrize("block", [(32,), (64,), (8, 4, 2), (1024,)])
def test_warp_shuffles_follow_cuda_semantics(rng, block):
    n = 2 * int(np.prod(block))
    x = rng.integers(-50, 50, n).astype(np.float32)   # integers: sums are exact in any order
    down, xr, seg = emu.shuffles(x, block)
    warps = x.reshape(-1, 32)
    np.testing.assert_array_equal(down[::32], warps.sum(1))                      # lane 0 of each warp
    np.testing.assert_array_equal(xr, np.repeat(warps.sum(1), 32))               # butterfly: every lane
    lane = np.arange(n) % 8
    src = np.where(lane + 3 < 8, np.arange(n) + 3, np.arange(n))                 # width-8 segments
    np.testing.assert_array_equal(seg, x[src])


@pytest.mark.parametrize("threads", [32, 96, 1024])
def test_block_sum_reduces_with_warp_shuffles_and_shared_memory(rng, threads):
    x = rng.integers(-9, 9, 5 * threads).astype(np.float32)
    np.testing.assert_array_equal(emu.block_sum(x, threads), x.reshape(5, threads).sum(1))


def test_atomic_add_counts_across_blocks(rng):
    idx = rng.integers(0, 7, 1000).astype(np.int32)
    hist, total = emu.atomics(idx, 7, 64)                  # 16 blocks, the last one partial
    np.testing.assert_array_equal(hist, np.bincount(idx, minlength=7))
    assert total == 1000.0


def test_threads_exiting_before_a_barrier_raise_naming_the_kernel():
    with pytest.raises(RuntimeError, match=r"k_early_return_before_barrier.*diverged at __syncthreads.*32 of 64"):
        emu.faulty("early_return", 64)


def test_a_warp_shuffle_waiting_on_lanes_at_a_block_barrier_is_a_deadlock_not_a_hang():
    with pytest.raises(RuntimeError, match=r"k_warp_vs_block_deadlock.*deadlock"):
        emu.faulty("deadlock", 64)


def test_a_shuffle_naming_exited_lanes_raises():
    with pytest.raises(RuntimeError, match=r"k_shuffle_with_exited_lane.*exited"):
        emu.faulty("exited_lane", 32)


def test_the_emulator_runs_normally_after_a_failed_launch(rng):
    with pytest.raises(RuntimeError):
        emu.faulty("early_return", 64)
    x = rng.standard_normal(128).astype(np.float32)
    np.testing.assert_array_equal(emu.reverse(x, (2,), (64,)), 2 * x)


def test_fiber_stacks_hold_a_48_KiB_frame_in_each_of_1024_threads():
    n = 12 * 1024
    out = emu.stack(1024, n)
    t = np.arange(1024)[:, None]
    np.testing.assert_array_equal(out, ((t + np.arange(n)) & 3).sum(1))


@pytest.mark.parametrize("grid,block,smem,match", [
    ((1,), (1025,), 0, "at most 1024 threads"),
    ((1,), (32, 32, 2), 0, "at most 1024 threads"),
    ((0,), (32,), 0, "invalid grid"),
    ((1,), (32,), 1 << 20, "dynamic shared memory"),
])
def test_invalid_launch_configurations_raise(grid, block, smem, match):
    with pytest.raises(RuntimeError, match=match):
        emu.launch_empty(grid, block, smem)


# --- the shared-memory race check ----------------------------------------------------------------

def test_a_tiled_gemm_with_both_barriers_is_race_free_and_correct(rng):
    a, b = rng.standard_normal((32, 32)).astype(np.float32), rng.standard_normal((32, 32)).astype(np.float32)
    np.testing.assert_allclose(emu.tiled_gemm(a, b, True, True).reshape(32, 32), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("barrier1,barrier2", [(False, True), (True, False)])
def test_a_missing_syncthreads_in_a_tiled_gemm_is_reported_as_a_race(rng, barrier1, barrier2):
    a = rng.standard_normal((32, 32)).astype(np.float32)
    with pytest.raises(RuntimeError) as e:
        emu.tiled_gemm(a, a, barrier1, barrier2)
    msg = str(e.value)
    # which access comes first depends on the fibers' order; either way both are named
    assert "kernel (k_tiled_gemm<" in msg and "block (0,0,0)" in msg, msg
    assert "shared-memory data race (" in msg and "static shared memory at 0x" in msg, msg
    assert msg.count("thread (") == 2 and msg.count("test_kernels.cpp:") == 2, msg


def test_a_reduction_reading_its_partners_slot_too_early_is_reported(rng):
    x = rng.standard_normal(128).astype(np.float32)
    np.testing.assert_allclose(emu.tree_sum(x, 64, True), x.reshape(2, 64).sum(1), rtol=1e-5)
    with pytest.raises(RuntimeError, match=r"kernel k_tree_sum.*block \(0,0,0\).*shared-memory data race "
                                           r"\((read after write|write after read)\) on dynamic shared memory, byte offset \d+"):
        emu.tree_sum(x, 64, False)


def test_shared_atomics_are_not_a_race_but_a_plain_store_beside_them_is(rng):
    idx = rng.integers(0, 8, 64).astype(np.int32)
    np.testing.assert_array_equal(emu.shared_histogram(idx, False), np.bincount(idx, minlength=8))
    with pytest.raises(RuntimeError, match=r"k_shared_histogram.*data race \(write after write\).*atomically at"):
        emu.shared_histogram(idx, True)
    np.testing.assert_array_equal(emu.shared_histogram(idx, False), np.bincount(idx, minlength=8))
