"""Tests of demonstration datasets (`amf/data.py`): mixes, apportioning, masks, checkpoints, on
the integrator; and pre-training datasets of brax expert demonstrations (reacher, marked slow).

One compiled program per environment builds every mix: the weights are traced.
"""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import checkpoint, data, envs
from amf.envs.base import State
from amf.envs.integrator import Integrator

SIZE = 16  # demonstrations in the reacher datasets


@pytest.fixture(scope="module")
def env():
  return Integrator(horizon=4)


@pytest.fixture(scope="module")
def build(env):
  """Pre-training of 12 demos, one compile for every mix (the weights are traced)."""
  return jax.jit(lambda key, weights: data.pretraining(env, key, 12, weights))


def test_mix_weights_uniform():
  np.testing.assert_allclose(data.mix_weights("uniform", 12), np.full(12, 1 / 12), rtol=1e-6)


def test_mix_weights_skewed_is_zipf():
  w = np.asarray(data.mix_weights("skewed", 6, strength=1.5))
  zipf = np.arange(1, 7) ** -1.5
  np.testing.assert_allclose(w, zipf / zipf.sum(), rtol=1e-5)
  assert np.all(np.diff(w) < 0)
  np.testing.assert_allclose(data.mix_weights("skewed", 6, strength=0.0), np.full(6, 1 / 6),
                             rtol=1e-6)


def test_mix_weights_subset():
  w = np.asarray(data.mix_weights("subset", 12, k=5))
  np.testing.assert_allclose(w[:5], 0.2, rtol=1e-6)
  np.testing.assert_array_equal(w[5:], 0.0)


def test_mix_weights_vmap_over_traced_k_and_strength():
  w = jax.vmap(lambda k: data.mix_weights("subset", 4, k=k))(jnp.array([1, 3]))
  np.testing.assert_allclose(w, [[1, 0, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0]], rtol=1e-6)
  s = jax.vmap(lambda s: data.mix_weights("skewed", 3, strength=s))(jnp.array([0.0, 1.0]))
  np.testing.assert_allclose(s[1], np.array([1, 1 / 2, 1 / 3]) / (11 / 6), rtol=1e-5)
  np.testing.assert_allclose(s[0], 1 / 3, rtol=1e-6)


def test_unknown_mix_raises_naming_it():
  with pytest.raises(ValueError, match="'zipf'"):
    data.mix_weights("zipf", 12)


def test_apportion_subset_is_exact():
  counts = data.apportion(data.mix_weights("subset", 12, k=5), 12)
  np.testing.assert_array_equal(counts, [3, 3, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("total", [1, 7, 12, 13, 100])
def test_apportion_sums_to_total_and_stays_within_one(total):
  weights = jnp.asarray(np.random.default_rng(total).dirichlet(np.ones(9)), jnp.float32)
  counts = np.asarray(data.apportion(weights, total))
  assert counts.sum() == total and counts.min() >= 0
  assert np.all(np.abs(counts - np.asarray(weights) * total) < 1)


@pytest.mark.parametrize("k", range(1, 13))
def test_apportion_exact_multiples(k):
  # Whenever k divides the total, every covered task gets exactly total / k demos,
  # even though 1/k is not exact in float32.
  counts = np.asarray(data.apportion(data.mix_weights("subset", 12, k=k), 12 * k))
  np.testing.assert_array_equal(counts, [12] * k + [0] * (12 - k))


def test_counts_to_ids():
  ids = data.counts_to_ids(jnp.array([0, 2, 0, 3, 1]), 6)
  np.testing.assert_array_equal(ids, [1, 1, 3, 3, 3, 4])


@pytest.mark.parametrize("mix,kwargs", [("uniform", {}), ("subset", {"k": 5}),
                                         ("skewed", {"strength": 1.0})])
def test_pretraining_task_counts_equal_apportioned_counts(env, build, mix, kwargs):
  weights = data.mix_weights(mix, 12, **kwargs)
  ds = build(jax.random.PRNGKey(0), weights)
  np.testing.assert_array_equal(data.task_counts(ds, 12), data.apportion(weights, 12))
  assert bool(ds.mask.all())
  np.testing.assert_allclose(ds.task, env.tasks[ds.task_id])


def test_pretraining_holds_expert_demonstrations(env, build):
  ds = build(jax.random.PRNGKey(1), data.mix_weights("uniform", 12))
  assert ds.obs.shape == (12, 4, 2) and ds.actions.shape == (12, 4, 2)
  assert ds.task.shape == (12, 1) and ds.task_id.dtype == jnp.int32 and ds.size == 12
  # Each action is the expert's in the state it was taken in, and states integrate actions.
  states = jax.vmap(lambda o, c: env.reset(jax.random.PRNGKey(0), c).replace(obs=o))
  for t in range(4):
    np.testing.assert_allclose(ds.actions[:, t], jax.vmap(env.expert)(states(ds.obs[:, t],
                                                                             ds.task)), atol=1e-6)
  np.testing.assert_allclose(ds.obs[:, 1:], ds.obs[:, :-1] + ds.actions[:, :-1], atol=1e-6)


def test_same_key_same_dataset(build):
  weights = data.mix_weights("subset", 12, k=3)
  a = build(jax.random.PRNGKey(5), weights)
  b = build(jax.random.PRNGKey(5), weights)
  jax.tree.map(np.testing.assert_array_equal, a, b)
  c = build(jax.random.PRNGKey(6), weights)
  assert not np.array_equal(a.obs, c.obs)


def test_task_counts_ignore_empty_slots(env):
  ds = data.Dataset(obs=jnp.zeros((5, 4, 2)), actions=jnp.zeros((5, 4, 2)),
                    task=jnp.zeros((5, 1)), task_id=jnp.array([2, 2, 0, 2, -1], jnp.int32),
                    mask=jnp.array([True, False, True, True, True]))
  np.testing.assert_array_equal(data.task_counts(ds, 4), [1, 0, 2, 0])


@pytest.mark.slow  # > 3 s
def test_empty_write_and_concat(env):
  ds = data.concat(data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([4, 4])),
                   data.empty(env, 3))
  assert ds.size == 5
  np.testing.assert_array_equal(ds.mask, [True, True, False, False, False])
  np.testing.assert_array_equal(ds.task_id, [4, 4, -1, -1, -1])
  np.testing.assert_array_equal(data.task_counts(ds, 12)[4], 2)
  new = data.demonstrate(env, jax.random.PRNGKey(1), jnp.array([7]))
  ds = data.write(ds, jnp.array([3]), new)
  np.testing.assert_array_equal(ds.mask, [True, True, False, True, False])
  np.testing.assert_array_equal(ds.task_id, [4, 4, -1, 7, -1])
  np.testing.assert_array_equal(ds.obs[3], new.obs[0])
  np.testing.assert_array_equal(ds.obs[2], 0.0)


def test_orbax_round_trip(build, tmp_path):
  ds = build(jax.random.PRNGKey(2), data.mix_weights("skewed", 12, strength=2.0))
  path = tmp_path / "dataset"
  checkpoint.save(str(path), ds)
  like = jax.tree.map(jnp.zeros_like, ds)
  restored = checkpoint.restore(str(path), like)
  assert isinstance(restored, data.Dataset)
  jax.tree.map(np.testing.assert_array_equal, restored, ds)
  assert restored.mask.dtype == jnp.bool_ and restored.task_id.dtype == jnp.int32
  # Saving again replaces what is there.
  checkpoint.save(str(path), like)
  jax.tree.map(np.testing.assert_array_equal, checkpoint.restore(str(path), ds), like)


def _padded(ds, length, garbage=np.nan):
  """`ds` with its steps from `length` on unrecorded (`steps`) and holding `garbage`."""
  return ds._replace(obs=ds.obs.at[:, length:].set(garbage),
                     actions=ds.actions.at[:, length:].set(-garbage),
                     steps=jnp.broadcast_to(jnp.arange(ds.obs.shape[1]) < length,
                                            ds.obs.shape[:2]))


def test_unrecorded_steps_are_zeroed_and_out_of_the_bc_loss(env):
  """Steps marked unrecorded are zero rows with mask False in `flat_pairs`, whatever they
  hold, and the BC loss equals the loss of the episodes cut to their recorded steps."""
  from amf import bc
  from amf.nn_policy import make_policy
  import optax
  ds = data.concat(data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 3, 5])),
                   data.empty(env, 1))
  h, length = ds.obs.shape[1], 3
  cut = ds._replace(obs=ds.obs[:, :length], actions=ds.actions[:, :length])
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (8,))
  params = policy.init(jax.random.PRNGKey(1))
  trainer = bc.Trainer(bc.policy_loss(policy), optax.adam(1e-3))
  loss = jax.jit(lambda d: trainer.full_loss(params, d, env.task_features))
  for garbage in (np.nan, 1e6):
    padded = _padded(ds, length, garbage)
    got = [np.asarray(x).reshape(4, h, -1) for x in data.flat_pairs(padded, env.task_features)]
    want = [np.asarray(x).reshape(4, length, -1) for x in data.flat_pairs(cut, env.task_features)]
    for g, w in zip(got, want):
      np.testing.assert_array_equal(g[:, :length], w)
      assert not g[:, length:].any()
    np.testing.assert_allclose(loss(padded), loss(cut), rtol=1e-6)


def test_steps_travel_through_write_concat_pad_and_checkpoints(env, tmp_path):
  """A step mask meets a dataset without one (every step recorded) in `write` and `concat`;
  `pad` appends unrecorded zero steps; checkpoints with steps round-trip, and checkpoints
  saved before `steps` existed restore (with None)."""
  ds = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 3]))
  short = data.pad(ds._replace(obs=ds.obs[:, :2], actions=ds.actions[:, :2]), 4)
  np.testing.assert_array_equal(short.steps, [[True, True, False, False]] * 2)
  np.testing.assert_array_equal(short.obs[:, :2], ds.obs[:, :2])
  assert not short.obs[:, 2:].any() and not short.actions[:, 2:].any()
  both = data.concat(ds, short)
  np.testing.assert_array_equal(both.steps, [[True] * 4] * 2 + [[True, True, False, False]] * 2)
  written = data.write(data.empty(env, 3), jnp.array([1]), jax.tree.map(lambda x: x[:1], short))
  np.testing.assert_array_equal(written.steps, [[True] * 4, [True, True, False, False],
                                                [True] * 4])
  np.testing.assert_array_equal(written.mask, [False, True, False])
  np.testing.assert_array_equal(data.every(short, 2).steps, [[True, False]] * 2)
  checkpoint.save(str(tmp_path / "masked"), short)
  restored = checkpoint.restore(str(tmp_path / "masked"), jax.tree.map(jnp.zeros_like, short))
  jax.tree.map(np.testing.assert_array_equal, restored, short)
  assert restored.steps.dtype == jnp.bool_
  # The fields a Dataset had before `steps`, saved whole and as a step of a Progress.
  old = collections.namedtuple("Dataset", data.Dataset._fields[:-1])(*ds[:-1])
  checkpoint.save(str(tmp_path / "old"), old)
  progress = checkpoint.Progress(str(tmp_path / "progress"))
  progress.save(1, dict(data=old))
  like = jax.tree.map(jnp.zeros_like, ds)
  for restored in (checkpoint.restore(str(tmp_path / "old"), like),
                   progress.restore(1, dict(data=like))["data"]):
    assert isinstance(restored, data.Dataset) and restored.steps is None
    jax.tree.map(np.testing.assert_array_equal, restored, ds)
  progress.close()
  with pytest.raises(ValueError, match="do not match"):  # other differences are still refused
    checkpoint.restore(str(tmp_path / "old"), like._replace(obs=jnp.zeros((2, 5, 2))))


def test_demonstrate_refuses_task_ids_out_of_range():
  env = Integrator()
  with pytest.raises(ValueError, match=r"\[12\] are out of range for 12 tasks"):
    data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([3, 12]))


@pytest.mark.slow  # 3 s: brax rollouts compile
def test_dart_demonstrations_label_the_perturbed_states_with_the_expert(env):
  ids = jnp.array([0, 5])
  clean = data.demonstrate(env, jax.random.PRNGKey(4), ids)
  noisy = data.demonstrate(env, jax.random.PRNGKey(4), ids, noise=0.1)
  # The perturbed actions take other paths (the reset has a key of its own, `amf.keys`).
  assert np.abs(np.asarray(noisy.obs[:, 1:] - clean.obs[:, 1:])).max() > 0.02
  # Every recorded action is the expert's own at the recorded state, not what was executed:
  # the executed step differs from it.
  expert = jax.vmap(jax.vmap(lambda o, c: env.expert(State(None, o, 0.0, 0.0, info={"task": c})),
                             in_axes=(0, None)))(noisy.obs, noisy.task)
  np.testing.assert_allclose(noisy.actions, expert, atol=1e-6)
  executed = np.diff(np.asarray(noisy.obs), axis=1)
  assert np.abs(executed - np.asarray(noisy.actions[:, :-1])).max() > 0.02
  # No noise gives exactly the noiseless episode.
  again = data.demonstrate(env, jax.random.PRNGKey(4), ids, noise=0.0)
  jax.tree.map(np.testing.assert_array_equal, again, clean)


# --- Pre-training datasets on a brax environment --------------------------------------------


@pytest.fixture(scope="module")
def reacher():
  env = envs.make("reacher", horizon=10)
  build = jax.jit(lambda key, weights: data.pretraining(env, key, SIZE, weights))
  return env, build


@pytest.mark.slow  # brax
@pytest.mark.parametrize("mix, kwargs", [
    ("uniform", {}), ("skewed", {"strength": 1.5}), ("subset", {"k": 3})])
def test_reacher_mixes_have_the_asked_for_task_counts(reacher, mix, kwargs):
  env, build = reacher
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


@pytest.mark.slow  # brax
def test_reacher_dataset_shapes_and_determinism(reacher):
  env, build = reacher
  weights = data.mix_weights("uniform", env.num_tasks)
  dataset = build(jax.random.PRNGKey(0), weights)
  assert dataset.obs.shape == (SIZE, env.horizon, env.observation_size)
  assert dataset.actions.shape == (SIZE, env.horizon, env.action_size)
  assert dataset.mask.all()
  jax.tree.map(np.testing.assert_array_equal, dataset, build(jax.random.PRNGKey(0), weights))
  assert not np.array_equal(dataset.obs, build(jax.random.PRNGKey(1), weights).obs)


@pytest.mark.slow  # brax
def test_reacher_orbax_round_trip(reacher, tmp_path):
  env, build = reacher
  dataset = build(jax.random.PRNGKey(0), data.mix_weights("subset", env.num_tasks, k=2))
  checkpoint.save(str(tmp_path / "dataset"), dataset)
  restored = checkpoint.restore(str(tmp_path / "dataset"), data.empty(env, SIZE))
  assert isinstance(restored, data.Dataset)
  jax.tree.map(np.testing.assert_array_equal, dataset, restored)
