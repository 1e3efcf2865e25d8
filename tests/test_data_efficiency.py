"""The data-efficiency experiment end to end on a tiny integrator setting."""
import os
import shutil

import pytest

from amf import metrics
from configs import data_efficiency as config_lib
from experiments import data_efficiency


def _tiny(**overrides):
  c = config_lib.get_config("integrator,quick")
  c.update(dict(num_seeds=2, ns=(1, 2), per_task_ns=(0, 2), per_task_base=1,
                per_task_tasks=(3,), hidden=(32, 32), pretrain_steps=300, eval_episodes=2))
  c.update(overrides)
  return c


@pytest.mark.slow  # runs the experiment end to end
def test_curves_outputs_and_resume(tmp_path):
  workdir = str(tmp_path / "run")
  rows = data_efficiency.run(_tiny(), workdir)
  uniform = [r for r in rows if r["curve"] == "uniform"]
  per_task = [r for r in rows if r["curve"] == "per_task"]
  assert len(uniform) == 2 * 2 * 12  # n values x seeds x tasks
  assert len(per_task) == 2 * 2      # per-task counts x seeds, task 3 only
  assert {r["task"] for r in per_task} == {3} and {r["n"] for r in per_task} == {0, 2}
  # A task's own demonstrations bring it closer to its goal than its neighbours' alone.
  ret = {n: sum(r["return"] for r in per_task if r["n"] == n) for n in (0, 2)}
  assert ret[0] < ret[2]
  for name in ("curve.csv", "summary.csv", "config.json", "data_efficiency.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  summary = metrics.read_csv(os.path.join(workdir, "summary.csv"))
  assert {(r["curve"], r["task"], r["n"]) for r in summary} == {
      ("uniform", "all", 1), ("uniform", "all", 2), ("per_task", "all", 0),
      ("per_task", "all", 2), ("per_task", 3, 0), ("per_task", 3, 2)}
  # A killed run: one chunk's checkpoint is lost; the rerun recomputes it identically.
  shutil.rmtree(os.path.join(workdir, "checkpoints", "uniform", "n=2"))
  assert data_efficiency.run(_tiny(), workdir) == rows


@pytest.mark.slow  # runs the experiment end to end
def test_no_per_task_counts_means_no_per_task_curve(tmp_path):
  rows = data_efficiency.run(_tiny(ns=(1,), per_task_ns=(), num_seeds=1), str(tmp_path))
  assert {r["curve"] for r in rows} == {"uniform"} and len(rows) == 12


@pytest.mark.parametrize("overrides,match", [
    (dict(ns=()), "ns must be"),
    (dict(ns=(0, 2)), "ns must be"),
    (dict(per_task_ns=(0, 4)), "draw on the max"),
    (dict(per_task_tasks=(12,)), r"per_task_tasks \[12\]"),
    (dict(demo_noise=-0.1), "demo_noise"),
    (dict(lr_decay="linear"), "learning-rate decay 'linear'"),
    (dict(eval_episodes=0), "eval_episodes"),
    (dict(env="ant"), "Unknown environment 'ant'"),
])
def test_bad_configs_are_refused_before_any_work(tmp_path, overrides, match):
  workdir = tmp_path / "refused"
  with pytest.raises(ValueError, match=match):
    data_efficiency.run(_tiny(**overrides), str(workdir))
  assert not workdir.exists()
