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

pytestmark = pytest.mark.slow  # > 3 s each: the pre-training (400 steps) or another compiled one


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
