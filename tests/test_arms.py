"""Tests of the plan's arm index (`amf/arms.py`, `experiments/arm_index.py`): an arm a finished process computed is read,
not run again, and reads the same rows the computation gives."""
import os

import pytest

from amf import arms, metrics
from configs import integrator_gp as gp_config
from experiments import arm_index, integrator_gp


def _config(**overrides):
  config = gp_config.get_config("quick")
  config.update({**dict(num_seeds=2, ks=(1, 3), budget=3, eval_episodes=2), **overrides})
  return config


def test_an_arm_key_ignores_which_arms_run_beside_it_but_not_what_it_computes():
  key = lambda config, *arm: arms.key(arms.settings(config.to_dict()), *arm)[0]
  base = key(_config(), "amf", "importance", "rbf", "finite")
  assert key(_config(methods=("amf",)), "amf", "importance", "rbf", "finite") == base
  assert key(_config(budget=6), "amf", "importance", "rbf", "finite") != base
  assert key(_config(), "amf", "uniform", "rbf", "finite") != base
  # A cheap strategy scores nothing: its estimator, kernel and proposal do not matter.
  assert key(_config(), "uniform", "a", "b", "c") == key(_config(), "uniform", "x", "y", "z")
  assert key(_config(), "uniform", "a", "b", "c") != key(_config(), "rebalancing", "a", "b", "c")
  # A setting added later keys no arm anew at the value that computes what it did before.
  later = lambda value: key(_config(eval_episode_batch=value), "amf", "importance", "rbf",
                            "finite")
  assert later(0) == base and later(2) != base


def test_settings_that_change_no_number_leave_a_config_the_same():
  config = _config().to_dict()
  for changed in ({"checkpoint_every": 1}, {"max_runs_per_call": 0}, {"eval_episode_batch": 0}):
    assert arms.canonical({**config, **changed}) == arms.canonical(config)
  # Runs per call change the rounding of wide calls (docs/studies.md): a process chunked
  # otherwise is another process, and its arms are other arms.
  for changed in ({"eval_episode_batch": 2}, {"max_runs_per_call": 8}):
    assert arms.canonical({**config, **changed}) != arms.canonical(config)
  chunked = lambda n: arms.key(arms.settings(_config(max_runs_per_call=n).to_dict()),
                               "uniform", "a", "b", "c")[0]
  absent = {k: v for k, v in _config().to_dict().items() if k != "max_runs_per_call"}
  # Every committed process ran with 0 and keeps its keys.
  assert chunked(0) == arms.key(arms.settings(absent), "uniform", "a", "b", "c")[0] != chunked(8)


@pytest.mark.slow  # three small sweeps
def test_a_second_process_reads_the_shared_arm_with_the_rows_it_would_compute(tmp_path):
  store = str(tmp_path / "arms")
  integrator_gp.run(_config(methods=("amf", "uniform")), str(tmp_path / "a"), arms=store)
  assert len(os.listdir(store)) == 2  # amf and uniform indexed
  shared = integrator_gp.run(_config(methods=("uniform", "rebalancing")), str(tmp_path / "b"),
                             arms=store)
  alone = integrator_gp.run(_config(methods=("uniform", "rebalancing")), str(tmp_path / "c"))
  # b ran only rebalancing (its checkpoints name the subset), and reads uniform's rows.
  assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == [
      "pretrained", "uniform+rebalancing-rebalancing"]
  assert shared == alone
  first = [r for r in metrics.read_csv(tmp_path / "a" / "metrics.csv") if r["method"] == "uniform"]
  assert [r for r in shared if r["method"] == "uniform"] == first
  assert len(os.listdir(store)) == 3  # rebalancing indexed too
  # A process whose every arm is indexed computes nothing, not even the pre-training.
  read = integrator_gp.run(_config(methods=("rebalancing", "amf")), str(tmp_path / "d"),
                           arms=store)
  assert not os.path.exists(tmp_path / "d" / "checkpoints")
  assert sorted(read, key=str) == sorted(
      [r for r in shared if r["method"] == "rebalancing"]
      + [r for r in metrics.read_csv(tmp_path / "a" / "metrics.csv") if r["method"] == "amf"],
      key=str)


def test_an_index_entry_is_found_only_while_its_process_holds_the_arms_settings(tmp_path):
  config, store = _config(), str(tmp_path / "arms")
  arm_key, identity = arms.key(arms.settings(config.to_dict()), "uniform", "", "", "")
  workdir = tmp_path / "p"
  workdir.mkdir()
  (workdir / "config.json").write_text(config.to_json())
  index = arm_index.Folder(store, str(workdir))
  index.record(arm_key, identity, "uniform")
  assert index.locate(arm_key) is None  # its tables are not written yet
  for table in arms.TABLES:
    (workdir / f"{table}.csv").write_text("method,seed\nuniform,0\nuniform,1\n")
  assert index.locate(arm_key) == (str(workdir), "uniform")
  assert [r["method"] for r in index.find(arm_key, "base")["metrics"]] == ["base", "base"]
  config.budget += 1  # a later config's outputs in the same workdir
  (workdir / "config.json").write_text(config.to_json())
  assert index.locate(arm_key) is None and index.find(arm_key, "base") is None
