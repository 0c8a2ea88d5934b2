"""The Q1/Q2 quality sweep (benchmarks/bench_quality.py) end to end on a few steps, and the two
trainer features its best recipes use: an EMA of G's weights and a linear learning-rate decay
(exact update rule, no effect on the trajectory, checkpointed, exact resume)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pygan.training import config, presets
from pygan.training.config import ConfigError
from pygan.training import Trainer, load_run
from pygan.training.ema import ema_weight
from pygan.training.schedule import lr_factor
from test_train import _state as _train_state, tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _state(t):
    """test_train's run state, plus the EMA of G."""
    out = _train_state(t)
    for i, e in enumerate(t.ema.values if t.ema is not None else []):
        out[f"ema.{i}"] = e
    return out


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=f"{k} differs")


@pytest.fixture
def no_plots(monkeypatch):
    monkeypatch.setattr(Trainer, "_figures", lambda self, final=False: None)


# --- EMA of G ------------------------------------------------------------------------------------

def test_ema_does_not_change_the_training_trajectory(tmp_path):
    plain = Trainer(tiny(), tmp_path / "a", progress=False)
    ema = Trainer(tiny(ema_decay=0.9), tmp_path / "b", progress=False)
    for _ in range(4):
        plain.train_step()
        ema.train_step()
        ema.evaluate()                       # evaluation swaps the EMA weights in and out
        with ema.use_ema():
            ema._field(50, 10)
    s = _state(ema)
    _assert_identical(_state(plain), {k: v for k, v in s.items() if not k.startswith("ema.")})


def test_ema_follows_its_update_rule_exactly(tmp_path):
    t = Trainer(tiny(ema_decay=0.95), tmp_path, progress=False)
    ref = [p.data.copy() for p in t.model.G.parameters()]          # starts at G's initial weights
    for step in range(1, 31):
        t.train_step()
        w = np.float32(ema_weight(0.95, step))
        for e, p in zip(ref, t.model.G.parameters()):
            e += (p.data - e) * w
    for e, mine in zip(ref, t.ema.values):
        np.testing.assert_array_equal(mine, e)
    # warm-up: w = 1 − (1 + t)/(10 + t) early on, then 1 − β
    assert ema_weight(0.95, 1) == pytest.approx(1 - 2 / 11)
    assert ema_weight(0.95, 1000) == pytest.approx(0.05)
    # after 30 steps the EMA differs from G (it lags behind)
    assert any(not np.array_equal(e, p.data) for e, p in zip(t.ema.values, t.model.G.parameters()))


def test_evaluation_and_load_run_use_the_ema_and_keep_the_raw_g(tmp_path, no_plots):
    out = str(tmp_path / "run")
    t = Trainer.new(tiny(ema_decay=0.9, steps=6, eval_every=3), out=out, progress=False)
    t.run()
    q = t.evaluate()
    assert {"modes", "hq_percent", "kl"} <= set(q["eval"]) and {"modes", "hq_percent", "kl"} <= set(q["eval_raw"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f]
    assert "eval" in recs[2] and "eval_raw" in recs[2] and "eval" not in recs[0]
    m_ema, _, _ = load_run(out)
    m_raw, _, _ = load_run(out, ema=False)
    for a, b, e, g in zip(m_ema.G.parameters(), m_raw.G.parameters(), t.ema.values, t.model.G.parameters()):
        np.testing.assert_array_equal(a.data, e)
        np.testing.assert_array_equal(b.data, g.data)


@pytest.mark.parametrize("over", [{"ema_decay": 0.9}, {"ema_decay": 0.9, "lr_decay": "linear", "lr_decay_start": 0.25},
                                  {"lr_decay": "linear", "loss": "wasserstein", "penalty": "gp", "n_critic": 2}],
                         ids=["ema", "ema+decay", "decay-wgan-gp"])
def test_resume_with_ema_and_lr_decay_is_bit_identical(tmp_path, no_plots, over):
    n = 6
    straight = Trainer.new(tiny(steps=2 * n, checkpoint_every=4, **over), out=str(tmp_path / "a"), progress=False)
    straight.run()
    half = Trainer.new(tiny(steps=2 * n, checkpoint_every=4, **over), out=str(tmp_path / "b"), progress=False)
    for _ in range(n):
        half.train_step()
    half.save_checkpoint()
    cont = Trainer.resume(str(tmp_path / "b"), progress=False)
    assert cont.step == n
    cont.run()
    _assert_identical(_state(straight), _state(cont))


def test_a_run_continued_with_a_decay_that_starts_later_equals_a_straight_run(tmp_path, no_plots):
    """Before its first decayed step the schedule's factor is exactly 1, so a constant-rate run's
    checkpoint continued under the decaying config is the straight decaying run, bit for bit."""
    decay = tiny(steps=12, ema_decay=0.9, lr_decay="linear", lr_decay_start=0.5)
    straight = Trainer(decay, tmp_path / "a", progress=False)
    for _ in range(12):
        straight.train_step()
    const = Trainer(tiny(steps=6, ema_decay=0.9), tmp_path / "b", progress=False)
    for _ in range(6):
        const.train_step()
    const.save_checkpoint()
    from pygan.training import checkpoint as ckpt
    cont = Trainer(decay, tmp_path / "c", checkpoint=ckpt.load(str(tmp_path / "b")), progress=False)
    for _ in range(6):
        cont.train_step()
    _assert_identical(_state(straight), _state(cont))


def test_linear_lr_decay_sets_both_learning_rates_from_the_step(tmp_path):
    cfg = tiny(lr_decay="linear", lr_decay_start=0.5, steps=10, **{"optim_d.lr": 1e-3})
    assert [lr_factor(cfg.lr_decay, s, cfg.steps, cfg.lr_decay_start) for s in range(1, 11)] == pytest.approx(
        [1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert lr_factor(tiny().lr_decay, 10, 10, 0.5) == 1.0
    t = Trainer(cfg, tmp_path, progress=False)
    for s in range(1, 11):
        t.train_step()
        assert t.opt_g.lr == pytest.approx(2e-4 * lr_factor(cfg.lr_decay, s, cfg.steps, cfg.lr_decay_start))
        assert t.opt_d.lr == pytest.approx(1e-3 * lr_factor(cfg.lr_decay, s, cfg.steps, cfg.lr_decay_start))


def test_bad_ema_and_decay_settings_are_named():
    for over, word in (({"ema_decay": 1.0}, "ema_decay"), ({"ema_decay": -0.1}, "ema_decay"),
                       ({"lr_decay": "cosine"}, "lr_decay"), ({"lr_decay_start": 1.0}, "lr_decay_start")):
        with pytest.raises(ConfigError, match=word):
            config.validate(tiny(**over))


def test_ema_presets_differ_from_the_plain_gan_only_in_ema_schedule_and_rates():
    for data in ("ring-8", "grid-25"):
        base = config.to_dict(presets.preset(data))
        ema = config.to_dict(presets.preset(f"{data}-ema"))
        assert {k for k in ema if ema[k] != base[k]} == {"name", "ema_decay"} and ema["ema_decay"] == 0.999
        rec = config.to_dict(presets.preset(f"{data}-decay-ema"))
        assert {k for k in rec if rec[k] != base[k]} <= {"name", "ema_decay", "lr_decay", "lr_decay_start", "steps",
                                                         "optim_g", "optim_d"}
        assert rec["lr_decay"] == "linear" and rec["ema_decay"] == 0.999
        assert rec["optim_g"] == rec["optim_d"] and rec["optim_g"]["betas"] == [0.5, 0.999]


# --- the benchmark script ------------------------------------------------------------------------

def test_quality_benchmark_quick_run_writes_json_table_and_figure(tmp_path):
    out, runs = tmp_path / "results", tmp_path / "runs"
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_quality.py"), "--quick",
                        "--out", str(out), "--runs-dir", str(runs), "--jobs", "2"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = json.loads((out / "quality.json").read_text())
    assert {x["method"] for x in data["runs"]} == {"nonsaturating", "nonsaturating-ema", "wgan-gp"}
    for run in data["runs"]:
        q = run["quality"]
        assert q["total_modes"] == 8 and 0 <= q["hq_percent"] <= 100 and q["step"] == run["steps"]
        assert run["command"].startswith("pygan train ") and "pygan eval" in run["command"]
        assert run["wall_s"] > 0
    ema_run = next(x for x in data["runs"] if x["method"] == "nonsaturating-ema")
    assert "quality_raw" in ema_run
    # the plain GAN is the raw G of the EMA run (training never reads the EMA), not trained again
    plain = next(x for x in data["runs"] if x["method"] == "nonsaturating")
    assert plain["run_dir"] == ema_run["run_dir"] and plain["quality"] == {**ema_run["quality_raw"]}
    assert plain["command"].startswith("pygan train ring-8 ")
    assert sorted(os.listdir(runs)) == sorted(["ring-8-ema-s0", "ring-8-ema-s0.log", "ring-8-ema-s0.wall.json",
                                               "wgan-gp-ring-8-s0", "wgan-gp-ring-8-s0.log",
                                               "wgan-gp-ring-8-s0.wall.json"])
    # the table's figures are the evaluation `pygan eval RUN --json` prints
    ev = subprocess.run([sys.executable, "-m", "pygan", "eval", ema_run["run_dir"], "--json"], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
    assert json.loads(ev.stdout)["hq_percent"] == ema_run["quality"]["hq_percent"]
    md = (out / "quality.md").read_text()
    assert "| GAN + EMA of G |" in md and "PacGAN4" in md and "pygan train ring-8-ema" in md
    assert (out / "quality_ring-8.png").stat().st_size > 10_000
    # a second invocation reuses the finished runs
    r2 = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_quality.py"), "--quick",
                         "--out", str(out), "--runs-dir", str(runs), "--no-figure"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0 and "reuse" in r2.stdout
    # --merge: a run whose folder is gone is taken from the report already there, marked as such
    shutil.rmtree(runs / "wgan-gp-ring-8-s0")
    r3 = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "bench_quality.py"), "--quick",
                         "--out", str(out), "--runs-dir", str(runs), "--no-figure", "--merge",
                         "--methods", "nonsaturating-ema"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r3.returncode == 0, r3.stdout[-3000:] + r3.stderr[-3000:]
    merged = json.loads((out / "quality.json").read_text())
    by_method = {x["method"]: x for x in merged["runs"]}
    assert set(by_method) == {"nonsaturating", "nonsaturating-ema", "wgan-gp"}
    assert by_method["wgan-gp"]["quality"] == next(x for x in data["runs"] if x["method"] == "wgan-gp")["quality"]
    assert by_method["wgan-gp"].get("merged_from") and not by_method["nonsaturating-ema"].get("merged_from")
    assert "wgan-gp-ring-8" in merged["meta"]["presets"]
    assert "Merged report" in (out / "quality.md").read_text()
    # merged again, a run still names the report that scored it, not the one it was merged into
    report = json.loads((out / "quality.json").read_text())
    report["meta"]["date"] = "a later date"
    (out / "quality.json").write_text(json.dumps(report))
    r4 = subprocess.run(r3.args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r4.returncode == 0, r4.stdout[-3000:] + r4.stderr[-3000:]
    again = {x["method"]: x for x in json.loads((out / "quality.json").read_text())["runs"]}
    assert again["wgan-gp"]["merged_from"] == by_method["wgan-gp"]["merged_from"]
    assert not again["wgan-gp"]["merged_from"].startswith("a later date")


def test_merge_leaves_out_a_run_whose_preset_settings_changed(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        import bench_quality as bq
    finally:
        sys.path.pop(0)
    run = {"method": "wgan-gp", "dataset": "ring-8", "seed": 0, "holdout": False, "preset": "wgan-gp-ring-8",
           "steps": 40, "quality": {"modes": 3, "total_modes": 8, "hq_percent": 1.0, "kl": 1.0}}
    stored = config.to_dict(presets.preset("wgan-gp-ring-8"))
    for settings, kept in ((stored, True), ({**stored, "penalty_weight": 99.0}, False)):
        path = tmp_path / "quality.json"
        path.write_text(json.dumps({"meta": {"date": "d", "git": "g", "presets": {"wgan-gp-ring-8": settings}},
                                    "runs": [run]}))
        missing = {**run, "error": "no finished run"}
        missing.pop("quality")
        out = bq.merge_previous([missing], str(path), lambda msg: None)
        assert len(out) == 1 and ("quality" in out[0]) == kept and ("error" in out[0]) == (not kept)
        # and a run of the old report that this invocation did not ask for is added only if unchanged
        assert len(bq.merge_previous([], str(path), lambda msg: None)) == (1 if kept else 0)
