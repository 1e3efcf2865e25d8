"""The benchmarks (`benchmarks/`) and probes (`probes/`) run, small, and print what they measure.

They are scripts a person runs by hand, so nothing else would notice when a change to the
library breaks one: each runs here on the integrator (or reacher for the environments'
benchmark, Meta-World's push for its own) at the smallest size its flags allow.
"""
import subprocess
import sys

import pytest

_QUICK_NN = ["--config=configs/active_finetune.py:integrator,quick", "--config.num_seeds=2",
             "--config.pretrain_steps=20", "--config.finetune_steps=10", "--config.budget=2",
             "--config.eval_episodes=1"]

SCRIPTS = {
    "benchmarks.integrator_gp": (["--config=configs/integrator_gp.py:quick", "--repeats=1"],
                                 "vmapped seeds cost"),
    "benchmarks.active_finetune": (_QUICK_NN + ["--tasks=4", "--samples=1", "--repeats=1",
                                                "--parts=selection"], "AMF-NN on integrator"),
    "benchmarks.discretisation": (["--study_env=integrator_gp", "--grid=2", "--starts=1",
                                   "--repeats=1"], "x grid:2"),
    "benchmarks.envs": (["--envs=reacher", "--sizes=1", "--horizon=2", "--repeats=1"],
                        "reacher"),
    "benchmarks.metaworld": (["--sizes=2", "--steps=2", "--repeats=1"], "callback"),
    "probes.batch_noise": (_QUICK_NN + ["--config.kernels=('last_layer',)",
                                        "--config.mixes=('subset',)"], "distinct tasks per batch"),
    "probes.search_gain": (["--study_env=integrator_gp", "--seeds=1"], "median ratio"),
}


@pytest.mark.slow  # a subprocess each, compiling its programs
@pytest.mark.parametrize("module", sorted(SCRIPTS))
def test_every_benchmark_and_probe_runs_small(module, tmp_path):
  flags, expected = SCRIPTS[module]
  workdir = [f"--workdir={tmp_path}"] if module.startswith("probes") else []
  result = subprocess.run([sys.executable, "-m", module, *flags, *workdir], capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert expected in result.stdout + result.stderr
