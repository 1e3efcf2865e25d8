"""Task spaces: the targets, mu and draws of a finite and a continuous space (fast)."""
import jax
import numpy as np
import pytest

from amf import task_spaces
from amf.active import LoopConfig
from amf.envs.integrator import Integrator


def test_finite_space_draws_only_target_tasks_by_their_weights():
  env = Integrator(num_tasks=6, horizon=4)
  space = task_spaces.finite(env, LoopConfig(target_tasks=(1, 4), target_mass=(3.0, 1.0)))
  np.testing.assert_allclose(space.mu, [0, 0.75, 0, 0, 0.25, 0])
  np.testing.assert_array_equal(space.ids, np.arange(6))
  np.testing.assert_array_equal(space.targets(jax.random.PRNGKey(0)), env.tasks)
  drawn = space.draw(jax.random.PRNGKey(1), 400)
  assert set(np.asarray(drawn.ids).tolist()) == {1, 4}
  assert 0.65 < float(np.mean(np.asarray(drawn.ids) == 1)) < 0.85
  np.testing.assert_array_equal(drawn.tasks, env.tasks[drawn.ids])
  assert space.shared  # the finite set scored whole: candidates are the targets


@pytest.mark.parametrize("cfg", [dict(num_candidates=8), dict(proposal="random")])
def test_finite_space_shares_nothing_when_candidates_are_not_the_set(cfg):
  env = Integrator(num_tasks=6, horizon=4)
  assert not task_spaces.finite(env, LoopConfig(**cfg)).shared


def test_continuous_space_draws_targets_in_the_region_off_the_set():
  env = Integrator(horizon=4)
  cfg = LoopConfig(task_space="continuous", target_region=((1.0, 2.0),), num_targets=5)
  space = task_spaces.continuous(env, cfg)
  targets = space.targets(jax.random.PRNGKey(0))
  assert targets.shape == (5, 1) and ((targets >= 1.0) & (targets <= 2.0)).all()
  np.testing.assert_array_equal(space.ids, [-1] * 5)
  np.testing.assert_allclose(space.mu, [0.2] * 5)
  drawn = space.draw(jax.random.PRNGKey(1), 7)
  assert ((drawn.tasks >= 1.0) & (drawn.tasks <= 2.0)).all() and (drawn.ids == -1).all()
  assert not np.array_equal(targets, space.targets(jax.random.PRNGKey(2)))
  assert not space.shared


def test_candidates_are_the_finite_set_or_a_grid_off_it():
  env = Integrator(num_tasks=6, horizon=4)
  whole = task_spaces.candidates(env, 0)
  np.testing.assert_array_equal(whole.tasks, env.tasks)
  np.testing.assert_array_equal(whole.ids, np.arange(6))
  grid = task_spaces.candidates(env, 4)
  assert grid.tasks.shape == (4, 1) and (grid.ids == -1).all()
  assert bool(env.task_space.contains(grid.tasks).all())


def test_unknown_task_space_names_the_choices():
  with pytest.raises(ValueError, match=r"task space 'discrete'.*continuous.*finite"):
    task_spaces.get("discrete")
