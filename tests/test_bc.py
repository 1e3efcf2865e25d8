"""Tests of behaviour cloning (`amf/bc.py`) of a tiny MLP policy on the integrator.

The pre-training is shared with test_forgetting.py (conftest.py).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import bc, data
from shared import BATCH, features



@pytest.mark.slow  # > 3 s: the pre-training (400 steps) or another compiled one
def test_pretraining_reduces_loss_and_imitates_expert(env, bc_setup, bc_pretrained):
  policy, _, pre, _, trainer = bc_setup
  params, _, losses = bc_pretrained
  init = policy.init(jax.random.split(jax.random.key(1))[0])
  before = trainer.full_loss(init, pre, env.task_features)
  after = trainer.full_loss(params, pre, env.task_features)
  assert after < 0.02 * before
  assert losses[-20:].mean() < 0.05 * losses[:20].mean()
  err = jnp.abs(policy.act(params, pre.obs, features(env, pre)) - pre.actions)
  assert err.mean() < 0.25 * jnp.abs(pre.actions).mean()


@pytest.mark.slow  # > 3 s: the pre-training (400 steps) or another compiled one
def test_training_is_deterministic_and_vmaps_over_seeds(env, bc_setup, bc_pretrained):
  policy, optimizer, pre, run, _ = bc_setup
  chex.assert_trees_all_equal(run(jax.random.key(1), pre), bc_pretrained)
  # A short run: over hundreds of steps float32 reorderings under vmap grow past any tolerance.
  short = jax.jit(lambda key: bc.pretrain(policy, optimizer, pre, env.task_features, key, 50,
                                          BATCH))
  keys = jax.random.split(jax.random.key(2), 2)
  batched = jax.vmap(short)(keys)
  for i in range(2):
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), short(keys[i]),
                                rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # > 3 s: the pre-training (400 steps) or another compiled one
def test_empty_slots_have_no_effect(env, bc_setup, bc_pretrained):
  policy, optimizer, pre, _, trainer = bc_setup
  params = bc_pretrained[0]
  clean = data.concat(pre, data.empty(env, 4))
  junk = lambda x: x.at[12:].set(jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else 3)
  dirty = clean._replace(obs=junk(clean.obs), actions=junk(clean.actions), task=junk(clean.task),
                         task_id=junk(clean.task_id))
  loss = lambda d: jax.value_and_grad(trainer.full_loss)(params, d, env.task_features)
  chex.assert_trees_all_equal(loss(clean), loss(dirty))
  np.testing.assert_allclose(loss(clean)[0], trainer.full_loss(params, pre, env.task_features),
                             rtol=1e-6)
  train = jax.jit(lambda d: trainer.train(params, optimizer.init(params), d, env.task_features,
                                          jax.random.key(3), 20))
  chex.assert_trees_all_equal(train(clean), train(dirty))


def test_a_few_steps_lower_the_loss_and_repeat_exactly(env):
  """Fast: 30 Adam steps on four demonstrations lower the BC loss; the same key repeats."""
  import optax
  from amf.nn_policy import make_policy
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (8,), 0.05)
  demos = data.demonstrate(env, jax.random.key(0), jnp.array([0, 3, 6, 9]))
  trainer = bc.Trainer(bc.policy_loss(policy), optax.adam(1e-2), 16)
  init = policy.init(jax.random.key(1))
  train = jax.jit(lambda key: trainer.train(init, optax.adam(1e-2).init(init), demos,
                                            env.task_features, key, 30))
  params, _, losses = train(jax.random.key(2))
  assert losses.shape == (30,)
  assert (trainer.full_loss(params, demos, env.task_features)
          < 0.5 * trainer.full_loss(init, demos, env.task_features))
  chex.assert_trees_all_equal(train(jax.random.key(2))[0], params)



def test_cosine_decay_scales_each_call_from_one_to_zero(env):
  """Fast: with `decay='cosine'` step i of an N-step call is Adam's step times
  0.5 (1 + cos(pi i / N)), Adam's moments untouched: the first as large as `constant`'s, the
  last zero, and the next call starts again from the full step. An unknown decay is refused."""
  import optax
  demos = data.demonstrate(env, jax.random.key(0), jnp.array([0, 3]))
  # A loss that ignores the minibatch, so a step-by-step replay need not draw the same pairs.
  loss = lambda params, frozen, batch: 0.5 * jnp.sum((params - jnp.array([3.0, -1.0])) ** 2)
  adam = optax.adam(0.1)
  start = jnp.array([1.0, 2.0])
  key = jax.random.key(1)
  train = lambda decay, p, s, steps: bc.Trainer(loss, adam, 4, decay).train(
      p, s, demos, env.task_features, key, steps)

  steps = 4
  cosine, state, _ = train("cosine", start, adam.init(start), steps)
  p, s = start, adam.init(start)
  for f in 0.5 * (1 + np.cos(np.pi * np.arange(steps) / steps)):
    full, s, _ = train("constant", p, s, 1)
    p = p + f * (full - p)
  np.testing.assert_allclose(cosine, p, rtol=1e-6)
  chex.assert_trees_all_close(state, s, rtol=1e-6)
  assert not np.allclose(cosine, train("constant", start, adam.init(start), steps)[0])
  # The schedule restarts with each call: one more step is a full one.
  np.testing.assert_allclose(train("cosine", cosine, state, 1)[0],
                             train("constant", cosine, state, 1)[0], rtol=1e-6)
  with pytest.raises(ValueError, match="learning-rate decay 'linear'"):
    train("linear", start, adam.init(start), 2)
