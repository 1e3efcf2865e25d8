"""The launcher (`launch/reproduce.py`): figure selection, commands per scale, Slurm scripts."""
import importlib
import shlex

import pytest

from launch import reproduce

ENVS = ("integrator", "reacher", "pusher")


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
def test_every_command_loads_its_experiments_config_at_its_scale_and_env(figure, scale):
  config = next(a for a in reproduce.command(figure, scale, "d") if a.startswith("--config="))
  path, _, arg = config.removeprefix("--config=").partition(":")
  experiment = reproduce.FIGURES[figure][0]
  assert path == f"configs/{experiment.removeprefix('experiments.')}.py"
  module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
  loaded = module.get_config(arg) if arg else module.get_config()
  assert loaded.scale == scale
  (env,) = [e for e in ENVS if e in figure.split("_")]  # every figure names its environment
  assert loaded.env == env
