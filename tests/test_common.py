"""What every experiment shares (`experiments/common.py`): workdirs, comparisons, loop settings,
the script entry point (`common.main`)."""
import json
import subprocess
import sys

import ml_collections
import pytest

from experiments import active_finetune, common
from configs import active_finetune as config_lib


def _config(**values):
  return ml_collections.ConfigDict(dict(dict(env="integrator", budget=4, seed=0), **values))


def test_a_workdir_of_the_same_config_is_reused_and_of_another_refused(tmp_path):
  workdir = tmp_path / "run"
  common.prepare_workdir(_config(), str(workdir))
  (workdir / "metrics.csv").write_text("kept")
  common.prepare_workdir(_config(), str(workdir))  # the same config resumes: nothing deleted
  assert (workdir / "metrics.csv").read_text() == "kept"
  common.prepare_workdir(_config(checkpoint_every=1), str(workdir))  # no number changes
  assert (workdir / "metrics.csv").read_text() == "kept"
  with pytest.raises(ValueError, match=r"another config \(it differs in \['budget', 'mix'\]\)"):
    common.prepare_workdir(_config(budget=8, mix="subset"), str(workdir))
  # Runs per call change the numbers of wide calls (docs/studies.md): a run killed under one
  # width does not resume under another.
  with pytest.raises(ValueError, match=r"differs in \['max_runs_per_call'\]"):
    common.prepare_workdir(_config(max_runs_per_call=20), str(workdir))
  assert (workdir / "metrics.csv").exists()
  common.prepare_workdir(_config(budget=8), str(workdir), overwrite=True)
  assert not (workdir / "metrics.csv").exists()
  assert json.loads((workdir / "config.json").read_text())["budget"] == 8


def test_a_workdir_that_cannot_be_written_is_refused(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("")
  with pytest.raises(ValueError, match="cannot be written"):
    common.prepare_workdir(_config(), str(blocker / "run"))


def test_an_experiment_refuses_another_configs_workdir_before_any_work(tmp_path):
  config = config_lib.get_config("integrator,quick")
  common.prepare_workdir(config, str(tmp_path))
  config.budget = 2
  with pytest.raises(ValueError, match=r"differs in \['budget'\]"):
    active_finetune.run(config, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_comparisons_pair_amf_with_every_baseline_and_everything_with_uniform():
  assert common.comparisons(["amf", "uniform", "rebalancing"]) == [
      ("amf", "uniform"), ("amf", "rebalancing"), ("rebalancing", "uniform")]
  assert common.comparisons(["amf/a", "amf/b", "uniform"]) == [
      ("amf/a", "uniform"), ("amf/b", "uniform")]


@pytest.mark.slow  # a subprocess
def test_an_experiment_runs_as_a_script_and_exits_cleanly(tmp_path):
  """`python -m experiments.X --config=... --workdir=...` as the launcher and Slurm run it."""
  result = subprocess.run(
      [sys.executable, "-m", "experiments.experts", "--config=configs/experts.py:integrator",
       "--config.episodes=2", "--config.continuous_tasks=4",
       f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / "metrics.csv").exists()
