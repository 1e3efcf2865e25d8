"""Pre-training datasets of brax expert demonstrations: task mixes, determinism, orbax round trip.

One compiled program (reacher, short horizon) builds every mix: the weights are traced.
"""
import jax
import numpy as np
import pytest

from amf import checkpoint, data, envs

SIZE = 16


@pytest.fixture(scope="module")
def setup():
  env = envs.make("reacher", horizon=10)
  build = jax.jit(lambda key, weights: data.pretraining(env, key, SIZE, weights))
  return env, build


@pytest.mark.parametrize("mix, kwargs", [
    ("uniform", {}), ("skewed", {"strength": 1.5}), ("subset", {"k": 3})])
def test_mixes_have_the_asked_for_task_counts(setup, mix, kwargs):
  env, build = setup
  weights = data.mix_weights(mix, env.num_tasks, **kwargs)
  dataset = build(jax.random.PRNGKey(0), weights)
  counts = np.asarray(data.task_counts(dataset, env.num_tasks))
  np.testing.assert_array_equal(counts, data.apportion(weights, SIZE))
  assert counts.sum() == SIZE
  if mix == "subset":
    assert counts[3:].sum() == 0 and (counts[:3] > 0).all()
  if mix == "skewed":
    assert (np.diff(counts) <= 0).all() and counts[0] > counts[-1]
  np.testing.assert_array_equal(dataset.task, env.tasks[dataset.task_id])


def test_shapes_and_determinism(setup):
  env, build = setup
  weights = data.mix_weights("uniform", env.num_tasks)
  dataset = build(jax.random.PRNGKey(0), weights)
  assert dataset.obs.shape == (SIZE, env.horizon, env.observation_size)
  assert dataset.actions.shape == (SIZE, env.horizon, env.action_size)
  assert dataset.mask.all()
  jax.tree.map(np.testing.assert_array_equal, dataset, build(jax.random.PRNGKey(0), weights))
  assert not np.array_equal(dataset.obs, build(jax.random.PRNGKey(1), weights).obs)


def test_orbax_round_trip(setup, tmp_path):
  env, build = setup
  dataset = build(jax.random.PRNGKey(0), data.mix_weights("subset", env.num_tasks, k=2))
  checkpoint.save(str(tmp_path / "dataset"), dataset)
  restored = checkpoint.restore(str(tmp_path / "dataset"), data.empty(env, SIZE))
  assert isinstance(restored, data.Dataset)
  jax.tree.map(np.testing.assert_array_equal, dataset, restored)
