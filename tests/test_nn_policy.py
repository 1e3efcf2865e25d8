"""Tests of the NN policy, BC training and the forgetting mitigations on the integrator."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amf import bc, checkpoint, data, forgetting
from amf.envs.integrator import Integrator
from amf.nn_policy import make_policy

STEPS, BATCH = 400, 64


@pytest.fixture(scope="module")
def env():
  return Integrator()


@pytest.fixture(scope="module")
def setup(env):
  """A tiny policy, its optimiser, the pre-training data and the jitted pre-training."""
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size, (32, 32))
  optimizer = optax.adam(3e-3)
  pre = data.pretraining(env, jax.random.key(0), 12, data.mix_weights("uniform", 12))
  run = jax.jit(lambda key, d: bc.pretrain(policy, optimizer, d, env.task_features, key, STEPS,
                                           BATCH))
  trainer = bc.Trainer(bc.policy_loss(policy), optimizer, BATCH)
  return policy, optimizer, pre, run, trainer


@pytest.fixture(scope="module")
def pretrained(setup):
  *_, pre, run, _ = setup
  return run(jax.random.key(1), pre)


def features(env, d):
  return jax.vmap(env.task_features)(d.task)[:, None]


def test_pretraining_reduces_loss_and_imitates_expert(env, setup, pretrained):
  policy, _, pre, _, trainer = setup
  params, _, losses = pretrained
  init = policy.init(jax.random.split(jax.random.key(1))[0])
  before = trainer.full_loss(init, pre, env.task_features)
  after = trainer.full_loss(params, pre, env.task_features)
  assert after < 0.02 * before
  assert losses[-20:].mean() < 0.05 * losses[:20].mean()
  err = jnp.abs(policy.act(params, pre.obs, features(env, pre)) - pre.actions)
  assert err.mean() < 0.25 * jnp.abs(pre.actions).mean()


def test_training_is_deterministic_and_vmaps_over_seeds(env, setup, pretrained):
  policy, optimizer, pre, run, _ = setup
  chex.assert_trees_all_equal(run(jax.random.key(1), pre), pretrained)
  # A short run: over hundreds of steps float32 reorderings under vmap grow past any tolerance.
  short = jax.jit(lambda key: bc.pretrain(policy, optimizer, pre, env.task_features, key, 50,
                                          BATCH))
  keys = jax.random.split(jax.random.key(2), 2)
  batched = jax.vmap(short)(keys)
  for i in range(2):
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), short(keys[i]),
                                rtol=1e-4, atol=1e-5)


def test_empty_slots_have_no_effect(env, setup, pretrained):
  policy, optimizer, pre, _, trainer = setup
  params = pretrained[0]
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


MODES = ("none", "replay", "adaptive_prior", "isolation")
FT_STEPS = 200


@pytest.fixture(scope="module")
def modes(env, setup):
  """Each mitigation with its jitted init and fine-tuning."""
  policy, optimizer, *_ = setup
  options = {"adaptive_prior": {"penalty": 0.05}, "isolation": {"num_cells": 4}}
  out = {}
  for name in MODES:
    mode = forgetting.make(name, env, policy, optimizer, BATCH,
                           **options.get(name, {}))
    out[name] = (mode, jax.jit(mode.finetune, static_argnums=4))
  return out


def new_demos(env, seed, ids):
  return data.demonstrate(env, jax.random.key(seed), jnp.asarray(ids))


@pytest.mark.parametrize("name", MODES)
def test_finetuning_keeps_prior_frozen(env, setup, pretrained, modes, name):
  mode, finetune = modes[name]
  params = pretrained[0]
  pre = setup[2]
  state = finetune(mode.init(params, jax.random.key(4)), pre, new_demos(env, 5, [0, 4, 8]),
                   jax.random.key(6), FT_STEPS)
  chex.assert_trees_all_equal(state.prior, params)
  pre_phi = features(env, pre)
  actions = mode.act(state, pre.obs, pre_phi)
  chex.assert_shape(actions, pre.actions.shape)
  assert jnp.all(jnp.isfinite(mode.log_prob(state, pre.obs, pre_phi, pre.actions)))


def test_none_ignores_pretraining_data_and_replay_uses_both(env, setup, pretrained, modes):
  pre, params = setup[2], pretrained[0]
  other = data.pretraining(env, jax.random.key(7), 12, data.mix_weights("subset", 12, k=3))
  new, new2 = new_demos(env, 5, [0, 4, 8]), new_demos(env, 8, [1, 5, 9])
  def run(name, pre_data, new_data):
    mode, finetune = modes[name]
    return finetune(mode.init(params, jax.random.key(4)), pre_data, new_data,
                    jax.random.key(6), FT_STEPS).params
  chex.assert_trees_all_equal(run("none", pre, new), run("none", other, new))
  differs = lambda a, b: not all(jax.tree.leaves(jax.tree.map(jnp.array_equal, a, b)))
  assert differs(run("none", pre, new), run("none", pre, new2))
  assert differs(run("replay", pre, new), run("replay", other, new))
  assert differs(run("replay", pre, new), run("replay", pre, new2))


def test_adaptive_prior_alpha_is_in_unit_interval_and_pushed_low(env, setup, pretrained, modes):
  mode, finetune = modes["adaptive_prior"]
  phi = jax.vmap(env.task_features)(env.tasks)
  state = mode.init(pretrained[0], jax.random.key(4))
  start = mode.alpha(state, phi)
  # New expert demos agree with the (well pre-trained) prior, so only the penalty acts on alpha.
  state = finetune(state, setup[2], new_demos(env, 5, list(range(12))), jax.random.key(6),
                   FT_STEPS)
  alpha = mode.alpha(state, phi)
  assert jnp.all((alpha >= 0) & (alpha <= 1))
  assert alpha.mean() < 0.5 * start.mean()


def test_isolation_cells_change_only_with_their_own_data(env, setup, pretrained, modes):
  mode, finetune = modes["isolation"]
  params = pretrained[0]
  # Cells of 12 tasks in 4 contiguous runs: tasks 0-2 are cell 0.
  chex.assert_trees_all_equal(mode.cell(jax.vmap(env.task_features)(env.tasks)),
                              jnp.repeat(jnp.arange(4), 3))
  state = finetune(mode.init(params, jax.random.key(4)), setup[2], new_demos(env, 5, [0, 1, 2]),
                   jax.random.key(6), FT_STEPS)
  for k in range(4):
    cell = jax.tree.map(lambda p: p[k], state.params)
    same = all(jax.tree.leaves(jax.tree.map(jnp.array_equal, cell, params)))
    assert same == (k != 0)
  # Acting on a task of an untouched cell is the pre-trained policy.
  obs, phi = jnp.ones((5, 2)) * 0.1, env.task_features(env.tasks[7])
  chex.assert_trees_all_close(mode.act(state, obs, phi), setup[0].act(params, obs, phi))


def test_unknown_mode_raises(env, setup):
  with pytest.raises(ValueError, match="'ewc'"):
    forgetting.make("ewc", env, setup[0], setup[1])


def test_each_mode_takes_only_its_own_options(env, setup):
  assert forgetting.options("adaptive_prior") == ("penalty", "alpha_hidden")
  assert forgetting.options("isolation") == ("num_cells",)
  assert forgetting.options("none") == forgetting.options("replay") == ()
  with pytest.raises(ValueError, match=r"'replay' takes the options \[\], not \['penalty'\]"):
    forgetting.make("replay", env, setup[0], setup[1], penalty=0.1)
  with pytest.raises(ValueError, match=r"not \['task_features'\]"):
    forgetting.make("isolation", env, setup[0], setup[1], task_features=None)


def test_pretrained_params_checkpoint_round_trip(pretrained, tmp_path):
  params = pretrained[0]
  checkpoint.save(str(tmp_path / "policy"), params)
  chex.assert_trees_all_equal(checkpoint.restore(str(tmp_path / "policy"), params), params)


def test_adaptive_prior_gate_opens_only_where_new_data_disagree(env, setup, pretrained, modes):
  """New demos of task 9 whose actions contradict the prior (negated): the gate opens on task 9
  and stays low on the pre-training tasks far from it, where no new data call for change."""
  mode, finetune = modes["adaptive_prior"]
  new = new_demos(env, 5, [9, 9, 9])
  new = new._replace(actions=-new.actions)
  state = finetune(mode.init(pretrained[0], jax.random.key(4)), setup[2], new,
                   jax.random.key(6), 4 * FT_STEPS)
  alpha = mode.alpha(state, jax.vmap(env.task_features)(env.tasks))
  assert alpha[9] > 0.4
  assert float(alpha[:8].max()) < 0.1 * float(alpha[9])
