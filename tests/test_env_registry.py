"""An environment is its module plus its registration: everything else derives from the registry.

The test registers a small environment of its own (a point on a line that must reach a goal)
and checks that every config, study and launcher figure picks it up, then runs one of its
study processes end to end.
"""
import os

import jax
import jax.numpy as jnp
import pytest

from amf import envs, metrics
from amf.envs.base import MultiTaskEnv, State, TaskBox
from configs import active_finetune as active_config, data_efficiency, experts, testbed, transfer
from configs import studies as study_configs
from experiments import active_finetune
from launch import reproduce, studies


class Line(MultiTaskEnv):
  """`s' = s + clip(a)` on a line; task = the goal in [-1, 1], features = the goal."""

  def __init__(self, num_tasks: int = 4, horizon: int = 4):
    self.horizon, self.observation_size, self.action_size, self.task_feature_size = (
        horizon, 1, 1, 1)
    self.task_space = TaskBox((-1.0,), (1.0,), (False,))
    self.tasks = self.grid(num_tasks)

  def grid(self, num):
    return self.task_space.grid(num)

  def task_features(self, task):
    return task

  def reset(self, key, task):
    zero = jnp.zeros(())
    return State(None, 0.05 * jax.random.normal(key, (1,)), zero, zero, info={"task": task})

  def step(self, state, action):
    state = state.replace(obs=state.obs + jnp.clip(action, -0.5, 0.5))
    return state.replace(reward=-jnp.abs(state.obs - state.info["task"]).sum())

  def success(self, state):
    return jnp.abs(state.obs - state.info["task"]).sum() < 0.1

  def expert(self, state):
    return jnp.clip(state.info["task"] - state.obs, -0.5, 0.5)


TESTBED = envs.Testbed(
    env_kwargs=dict(num_tasks=4),
    learner=envs.Learner(hidden=(8,), action_std=0.05, pretrain_steps=50),
    loop=envs.Loop(pretrain_size=4, budget=2, num_seeds=2, eval_episodes=2, finetune_steps=10),
    quick_studies=True, study_seeds=3, skip_kernels=("ntk",), first_tasks=1,
    transfer_sources=(2,), studies={"discretisation": dict(eval_episodes=3)})


@pytest.fixture
def line():
  envs.register("line", Line, TESTBED)
  yield "line"
  del envs.ENVS["line"]


def test_a_registered_environment_is_in_every_config_study_and_figure(line):
  assert isinstance(envs.make(line, num_tasks=3), Line)
  assert envs.testbed(line) is TESTBED
  c = active_config.get_config(f"{line},quick")
  assert (c.env, c.env_kwargs.num_tasks, c.hidden, c.pretrain_size, c.finetune_steps) == (
      line, 4, (8,), 4, 500)  # the quick scale caps fine-tuning at 500 steps
  assert active_config.get_config(line).finetune_steps == 10
  assert data_efficiency.get_config(line).pretrain_steps == 50
  assert experts.get_config(f"{line},quick").env_kwargs.num_tasks == 4
  assert transfer.get_config(line).sources == (2,)
  # Studies: the quick scale runs it (quick_studies); the paper scale its study_seeds, without
  # its skipped kernels, with its discretisation overrides and first tasks.
  paper = {p.path: p for name in study_configs.STUDIES
           for p in studies.processes(study_configs.get(name, "paper"))}
  assert paper["kernels/line"].overrides["num_seeds"] == 3
  assert "ntk" not in paper["kernels/line"].overrides["kernels"]
  assert "ntk" in paper["kernels/reacher"].overrides["kernels"]
  assert paper["discretisation/line"].overrides["eval_episodes"] == 3
  assert paper["discretisation/line"].overrides["mixes"] == ("subset:1",)
  assert "rebalancing/line" in {p.path for p in studies.processes(
      study_configs.get("rebalancing", "quick"))}
  for figure in ("experts_line", "active_finetune_line", "data_efficiency_line"):
    assert figure in reproduce.figures()
  with pytest.raises(ValueError, match="Unknown env 'lines'; choose one of"):
    testbed.parse("lines")


def test_registering_another_environment_under_a_taken_name_is_refused(line):
  with pytest.raises(ValueError, match="'line' is registered already"):
    envs.register(line, Line.__new__, TESTBED)


@pytest.mark.slow  # runs a study process end to end
def test_a_study_process_runs_on_a_registered_environment(line, tmp_path):
  (process,) = [p for p in studies.processes(study_configs.get("rebalancing", "quick"))
                if p.env == line]
  studies.validate(process)
  config = studies.experiment_config(process)
  config.update(dict(methods=("amf", "uniform"), pretrain_steps=50, finetune_steps=10))
  workdir = str(tmp_path / process.path)
  rows = active_finetune.run(config, workdir)
  assert {r["env"] for r in rows} == {line}
  assert {r["method"] for r in rows} == {"amf", "uniform"}
  # methods x seeds (the quick scale's 3) x (rounds + 1): the testbed's budget of 2, one
  # demonstration a round.
  assert len(rows) == 2 * 3 * 3
  assert metrics.read_csv(os.path.join(workdir, "metrics.csv")) == rows
