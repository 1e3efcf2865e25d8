"""`probes.kernel_gram`: how two network kernels of a process differ on its pre-trained runs.

Under the categorical head `loss_gradient` has content of its own (it can correlate two inputs
negatively, `last_layer` on ReLU features with a bias cannot); under the fixed-std head it is
`last_layer` with a bias feature, so their correlation matrices nearly agree."""
import json

import numpy as np
import pytest

from amf import metrics
from configs import active_finetune as config_lib
from experiments import common
from probes import kernel_gram

KERNELS = ("loss_gradient", "last_layer")


def _process(path, head: str):
  c = config_lib.get_config("integrator,quick")
  c.update(dict(num_seeds=2, mixes=("subset",), pretrain_size=6, pretrain_steps=300,
                hidden=(16,), eval_episodes=2, kernels=KERNELS, head=head))
  common.prepare_workdir(c, str(path))
  return c


@pytest.mark.slow  # pre-trains two heads' runs and computes their Gram matrices
def test_categorical_loss_gradient_differs_from_last_layer_fixed_std_does_not(tmp_path):
  stats = {}
  for head in ("categorical", "fixed_std"):
    config = _process(tmp_path / head, head)
    out = tmp_path / f"out_{head}"
    rows = kernel_gram.run(str(tmp_path / head), str(out), KERNELS, seed=0, max_runs=1)
    assert (out / "checkpoints" / "pretrained").is_dir()  # the process had none: made here
    tasks = metrics.read_csv(out / "tasks.csv")
    num_tasks = len({r["task"] for r in tasks})
    assert len(tasks) == 2 * len(KERNELS) * num_tasks
    covered = {r["task"] for r in tasks if r["covered"]}
    assert covered == set(range(num_tasks // 2))  # subset: the first half of the tasks
    assert all(r["posterior"] <= r["prior"] + 1e-5 for r in tasks)
    share = {r["kernel"]: r["covered_share_mean"] for r in rows}
    assert all(0 <= s <= 1 for s in share.values())
    pairs = metrics.read_csv(out / "pairs.csv")
    assert len(pairs) == 2 and all(p["negative_b"] == 0 for p in pairs)  # last_layer >= 0
    stats[head] = (np.mean([p["negative_a"] for p in pairs]),
                   np.mean([p["mean_abs_diff"] for p in pairs]))
    assert (out / "kernel_gram.png").stat().st_size > 0
    written = (out / "tasks.csv").stat().st_mtime_ns
    again = kernel_gram.run(str(tmp_path / head), str(out), KERNELS, seed=0)  # read back
    assert (out / "tasks.csv").stat().st_mtime_ns == written
    assert [r["covered_share_mean"] for r in again] == [r["covered_share_mean"] for r in rows]
    assert config.kernels == KERNELS
  # Fixed std: `(h.h' + 1) sigma^2 a`, never negative; categorical: label covariances that are.
  assert stats["fixed_std"][0] == 0 and stats["categorical"][0] > 0.01, stats
  assert stats["categorical"][1] > stats["fixed_std"][1], stats


def test_bad_input_is_refused_before_any_work(tmp_path):
  with pytest.raises(ValueError, match="cannot read"):
    kernel_gram.run(str(tmp_path / "none"), str(tmp_path / "out"), KERNELS, 0)
  _process(tmp_path / "p", "categorical")
  with pytest.raises(ValueError, match="two or more of the process's kernels"):
    kernel_gram.run(str(tmp_path / "p"), str(tmp_path / "out"), ("loss_gradient", "ntk"), 0)
  with pytest.raises(ValueError, match="two or more"):
    kernel_gram.run(str(tmp_path / "p"), str(tmp_path / "out"), ("loss_gradient",), 0)
  config = json.loads((tmp_path / "p" / "config.json").read_text())
  (tmp_path / "gp").mkdir()  # an AMF-GP experiment's config: no network kernels
  (tmp_path / "gp" / "config.json").write_text(json.dumps(
      {k: v for k, v in config.items() if k != "kernels"}))
  with pytest.raises(ValueError, match="kernel_gram: .* is not an AMF-NN experiment's"):
    kernel_gram.run(str(tmp_path / "gp"), str(tmp_path / "out"), KERNELS, 0)
  config["task_space"] = "continuous"
  (tmp_path / "p" / "config.json").write_text(json.dumps(config))
  with pytest.raises(ValueError, match="finite one"):
    kernel_gram.run(str(tmp_path / "p"), str(tmp_path / "out"), KERNELS, 0)
  assert not (tmp_path / "out").exists()


def test_covered_demos_counts_each_arms_demonstrations_on_covered_tasks(tmp_path):
  rows = [dict(env="e", method=m, variant="subset(k=1)", seed=s, round=1, task=t)
          for m, s, t in (("amf/loss_gradient", 0, 0), ("amf/loss_gradient", 1, 1),
                          ("amf/last_layer", 0, 1), ("amf/last_layer", 1, -1),
                          ("uniform", 0, 0))]
  metrics.write_csv(tmp_path / "allocations.csv", rows, list(rows[0]))
  covered = {("subset(k=1)", 0): [True, False], ("subset(k=1)", 1): [True, False]}
  assert kernel_gram.covered_demos(str(tmp_path), covered, ("loss_gradient", "last_layer",
                                                           "ntk")) == {
      "loss_gradient": (1, 2), "last_layer": (0, 1)}  # off-set tasks (-1) are not counted
  assert kernel_gram.covered_demos(str(tmp_path / "none"), covered, ("ntk",)) == {}
