"""The launcher: figure selection, commands per scale, Slurm scripts."""
import importlib
import subprocess
import sys
import shlex

import pytest

from launch import reproduce


def test_all_selects_every_figure_and_unknown_names_are_refused():
  assert reproduce.selected(["all"]) == list(reproduce.FIGURES)
  with pytest.raises(ValueError, match="nope"):
    reproduce.selected(["integrator_gp", "nope"])


@pytest.mark.parametrize("figure", sorted(reproduce.FIGURES))
@pytest.mark.parametrize("scale", reproduce.SCALES)
def test_every_figure_has_a_command_at_every_scale(figure, scale):
  cmd = reproduce.command(figure, scale, "/tmp/out")
  assert cmd[1:3] == ["-m", reproduce.FIGURES[figure][0]]
  assert cmd[-1] == "--workdir=/tmp/out"
  assert any(arg.startswith("--config=configs/") for arg in cmd)


def test_quick_and_paper_scales_differ():
  quick = reproduce.command("integrator_gp", "quick", "d")
  paper = reproduce.command("integrator_gp", "paper", "d")
  assert quick != paper and "--config=configs/integrator_gp.py:quick" in quick


def test_sbatch_script_runs_the_same_command():
  script = reproduce.sbatch_script("integrator_gp", "paper", "/tmp/w",
                                   ["--time=01:00:00", "--cpus-per-task=4"])
  assert "#SBATCH --time=01:00:00\n#SBATCH --cpus-per-task=4\n" in script
  assert shlex.join(reproduce.command("integrator_gp", "paper", "/tmp/w")) in script


@pytest.mark.parametrize("figure", sorted(reproduce.FIGURES))
@pytest.mark.parametrize("scale", reproduce.SCALES)
def test_every_command_names_a_config_that_loads(figure, scale):
  config = next(a for a in reproduce.command(figure, scale, "d") if a.startswith("--config="))
  path, _, arg = config.removeprefix("--config=").partition(":")
  module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
  assert module.get_config(arg) if arg else module.get_config()


def test_an_experiment_runs_as_a_script_and_exits_cleanly(tmp_path):
  """`python -m experiments.X --config=... --workdir=...` as the launcher and Slurm run it."""
  result = subprocess.run(
      [sys.executable, "-m", "experiments.experts", "--config=configs/experts.py:integrator",
       "--config.episodes=2", "--config.continuous_tasks=4",
       f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / "metrics.csv").exists()
