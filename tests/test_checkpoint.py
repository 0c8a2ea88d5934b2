"""Checkpoints: round trip, atomic writes, clear errors for corrupt / foreign / mismatched files."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from pygan import files
from pygan.training import Trainer, checkpoint as ckpt, config, load_run, presets


def _tiny(**over):
    cfg = config.replace(presets.preset("ring-8"), {
        "model_args.width": 8, "model_args.depth": 2, "batch_size": 16, "steps": 4, "eval_every": 0,
        "sample_every": 0, "checkpoint_every": 0, "log_every": 1000, "eval_samples": 100})
    return config.replace(cfg, over)


def _save_simple(path, step=3, weight=1.0):
    ckpt.save(path, kind="gan", step=step, config={"name": "x"}, model={"name": "mlp"}, rng={"train": {}},
              modules={"G": {"0.weight": np.full((2, 3), weight, np.float32)}, "D": {"0.bias": np.arange(4.0)}},
              optimizers={"opt_g": {"optimizer": "Adam", "step": step, "0.exp_avg": np.ones(3, np.float32)},
                          "opt_d": {"optimizer": "SGD", "nesterov": False}}, state={"lr_factor": 1.5},
              extra={"perm": np.arange(5)})


def test_save_then_load_round_trips_every_entry(tmp_path):
    p = tmp_path / "c.npz"
    _save_simple(p)
    ck = ckpt.load(p)
    assert ck.step == 3 and ck.kind == "gan" and ck.version == ckpt.VERSION
    assert ck.config == {"name": "x"} and ck.model == {"name": "mlp"} and ck.state == {"lr_factor": 1.5}
    G, D = ck.modules["G"], ck.modules["D"]
    np.testing.assert_array_equal(G["0.weight"], np.ones((2, 3), np.float32))
    assert G["0.weight"].dtype == np.float32
    np.testing.assert_array_equal(D["0.bias"], np.arange(4.0))
    assert str(ck.optimizers["opt_g"]["optimizer"]) == "Adam" and int(ck.optimizers["opt_g"]["step"]) == 3
    assert bool(ck.optimizers["opt_d"]["nesterov"]) is False
    np.testing.assert_array_equal(ck.extra["perm"], np.arange(5))


def test_checkpoint_archive_holds_no_pickles(tmp_path):
    p = tmp_path / "c.npz"
    _save_simple(p)
    with np.load(p, allow_pickle=False) as z:
        for k in z.files:
            assert z[k].dtype.kind != "O", k
        assert str(z["__format__"]) == ckpt.FORMAT
        assert int(z["__version__"]) == ckpt.VERSION


def test_object_arrays_are_refused_at_save(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        ckpt.save(tmp_path / "c.npz", kind="gan", step=0, config={}, model={}, rng={},
                  modules={"G": {"w": np.array([{}], dtype=object)}}, optimizers={})


def test_interrupted_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    p = tmp_path / "c.npz"
    _save_simple(p, step=3, weight=1.0)
    before = p.read_bytes()

    real_savez = np.savez

    def savez_then_crash(f, **arrays):
        real_savez(f, **arrays)          # the new content is fully written to the temporary file…
        f.write(b"partial")
        raise KeyboardInterrupt("killed in the middle of a save")   # …then the save is interrupted

    monkeypatch.setattr(ckpt.np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        _save_simple(p, step=4, weight=2.0)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert ckpt.load(p).step == 3
    assert sorted(os.listdir(tmp_path)) == ["c.npz"], "the temporary file was not cleaned up"


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "f.bin"
    files.atomic_write(p, lambda f: f.write(b"old"))
    files.atomic_write(p, lambda f: f.write(b"new content"))
    assert p.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_stale_temporary_files_are_cleaned(tmp_path):
    (tmp_path / ".tmp-checkpoint.npz.abc").write_bytes(b"half a save")
    (tmp_path / "keep.txt").write_text("x")
    removed = files.clean_temporary_files(tmp_path)
    assert len(removed) == 1 and sorted(os.listdir(tmp_path)) == ["keep.txt"]


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    p = tmp_path / "c.npz"
    _save_simple(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load(p)


def test_garbage_file_is_reported_as_corrupt(tmp_path):
    p = tmp_path / "c.npz"
    p.write_bytes(b"this is not a zip archive at all" * 10)
    with pytest.raises(ckpt.CheckpointError, match="corrupt|not a readable"):
        ckpt.load(p)


def test_damaged_entry_is_reported_as_corrupt(tmp_path):
    p = tmp_path / "c.npz"
    _save_simple(p)
    # rewrite the archive with a broken config entry
    with zipfile.ZipFile(p) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = np.lib.format
    import io
    buf = io.BytesIO()
    cfg.write_array(buf, np.array("{not json"))
    entries["config.npy"] = buf.getvalue()
    with zipfile.ZipFile(p, "w") as z:
        for n, b in entries.items():
            z.writestr(n, b)
    with pytest.raises(ckpt.CheckpointError, match="config.*corrupt"):
        ckpt.load(p)


def test_foreign_npz_is_reported_as_not_a_pygan_checkpoint(tmp_path):
    p = tmp_path / "weights.npz"
    np.savez(p, W=np.ones(3), b=np.zeros(2))
    with pytest.raises(ckpt.CheckpointError, match="not a pygan checkpoint.*W, b"):
        ckpt.load(p)


def test_single_npy_array_is_not_a_checkpoint(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.ones(3))
    with pytest.raises(ckpt.CheckpointError, match="single array"):
        ckpt.load(p)


def test_other_format_version_is_refused(tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, __format__=np.array(ckpt.FORMAT), __version__=np.array(99))
    with pytest.raises(ckpt.CheckpointError, match="version 99.*reads versions 1, 2.*upgrade"):
        ckpt.load(p)


def test_missing_checkpoint_and_empty_run_folder(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load(tmp_path / "nope.npz")
    with pytest.raises(ckpt.CheckpointError, match="without checkpoint.npz"):
        ckpt.load(tmp_path)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    t = Trainer(_tiny(), tmp_path / "a", progress=False)
    t.train_step()
    path = t.save_checkpoint()
    ck = ckpt.load(path)
    with pytest.raises(ckpt.CheckpointError, match=r"model 'mlp' \(.*width=8.*\).*width=16.*shape"):
        Trainer(_tiny(**{"model_args.width": 16}), tmp_path / "b", checkpoint=ck, progress=False)
    with pytest.raises(ckpt.CheckpointError, match="missing.*unexpected"):
        Trainer(_tiny(**{"model_args.depth": 3}), tmp_path / "b", checkpoint=ck, progress=False)


def test_checkpoint_with_other_optimizer_is_refused(tmp_path):
    t = Trainer(_tiny(), tmp_path / "a", progress=False)
    t.train_step()
    ck = ckpt.load(t.save_checkpoint())
    with pytest.raises(ckpt.CheckpointError, match="opt_d.*RMSProp.*Adam"):
        Trainer(_tiny(**{"optim_d.name": "rmsprop"}), tmp_path / "b", checkpoint=ck, progress=False)


def test_load_run_rebuilds_model_with_saved_parameters(tmp_path):
    t = Trainer(_tiny(), tmp_path / "a", progress=False)
    for _ in range(3):
        t.train_step()
    t.save_checkpoint()
    model, cfg, ck = load_run(str(tmp_path / "a"))
    assert ck.step == 3 and cfg.model == "mlp"
    for (k, a), (_, b) in zip(model.G.state_dict().items(), t.model.G.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    for (k, a), (_, b) in zip(model.D.state_dict().items(), t.model.D.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_rng_states_survive_json(tmp_path):
    r = np.random.default_rng(7)
    r.random(13)
    s = json.loads(json.dumps(ckpt.generator_state(r)))
    r2 = np.random.default_rng(0)
    ckpt.set_generator_state(r2, s)
    np.testing.assert_array_equal(r.random(5), r2.random(5))


def test_module_generators_are_found_by_path():
    from pygan import nn
    m = nn.Sequential(nn.Linear(2, 3), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.1)))
    found = ckpt.module_rngs(m, "D")
    assert sorted(found) == ["D.1", "D.2.0"]
    assert found["D.1"] is m[1].rng


def _as_version_1(path, out):
    """Rewrite a checkpoint in format version 1's layout: G/, D/, opt_g/, opt_d/ (a VAE's network and
    optimizer as G and opt_g), no kind."""
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    kind = str(entries.pop("kind"))
    old = {}
    for k, v in entries.items():
        for new, v1 in (("modules/model/", "G/"), ("modules/G/", "G/"), ("modules/D/", "D/"),
                        ("optimizers/opt/", "opt_g/"), ("optimizers/opt_g/", "opt_g/"), ("optimizers/opt_d/", "opt_d/")):
            if k.startswith(new):
                k = v1 + k[len(new):]
                break
        old[k] = v
    old["__version__"] = np.array(1, dtype=np.int64)
    if kind == "vae":
        old.setdefault("D/__none__", np.zeros(0))      # version 1 wrote empty D/opt_d; nothing to read
    np.savez(out, **old)


@pytest.mark.parametrize("preset", ["ring-8-ema", "vae-digits"])
def test_version_1_checkpoints_resume_bit_identically(tmp_path, preset):
    """A run folder of the release before (format version 1) resumes as if it had been written now."""
    cfg = config.replace(presets.preset(preset), {"steps": 6, "eval_every": 0, "sample_every": 0,
                                                    "checkpoint_every": 0, "log_every": 1000})
    straight = Trainer(cfg, tmp_path / "a", progress=False)
    for _ in range(6):
        straight.train_step()
    half = Trainer(cfg, tmp_path / "b", progress=False)
    for _ in range(3):
        half.train_step()
    half.save_checkpoint(str(tmp_path / "v2.npz"))
    os.makedirs(tmp_path / "old")
    _as_version_1(tmp_path / "v2.npz", tmp_path / "old" / "checkpoint.npz")
    ck = ckpt.load(tmp_path / "old")
    assert ck.version == 1 and ck.kind == ("vae" if preset.startswith("vae") else "gan")
    cont = Trainer.resume(str(tmp_path / "old"), progress=False)
    for _ in range(3):
        cont.train_step()
    for name, mod in straight.task.modules().items():
        for (k, a), (_, b) in zip(mod.state_dict().items(), cont.task.modules()[name].state_dict().items()):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}.{k}")


def test_checkpoint_of_another_model_family_is_refused(tmp_path):
    t = Trainer(_tiny(), tmp_path / "a", progress=False)
    t.train_step()
    ck = ckpt.load(t.save_checkpoint())
    vae = config.replace(presets.preset("vae-digits"), {"steps": 2})
    with pytest.raises(ckpt.CheckpointError, match="holds a GAN run, not a VAE run"):
        Trainer(vae, tmp_path / "b", checkpoint=ck, progress=False)
