"""Tests of the forgetting mitigations (`amf/forgetting.py`) when fine-tuning a BC-pre-trained
MLP policy on the integrator (pre-training shared through conftest.py)."""
import chex
import jax
import jax.numpy as jnp
import pytest

from amf import data, forgetting
from shared import BATCH, features


MODES = ("none", "replay", "adaptive_prior", "isolation")
FT_STEPS = 200


@pytest.fixture(scope="module")
def modes(env, bc_setup):
  """Each mitigation with its jitted init and fine-tuning."""
  policy, optimizer, *_ = bc_setup
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
def test_finetuning_keeps_prior_frozen(env, bc_setup, bc_pretrained, modes, name):
  mode, finetune = modes[name]
  params = bc_pretrained[0]
  pre = bc_setup[2]
  state = finetune(mode.init(params, jax.random.key(4)), pre, new_demos(env, 5, [0, 4, 8]),
                   jax.random.key(6), FT_STEPS)
  chex.assert_trees_all_equal(state.prior, params)
  pre_phi = features(env, pre)
  actions = mode.act(state, pre.obs, pre_phi)
  chex.assert_shape(actions, pre.actions.shape)
  assert jnp.all(jnp.isfinite(mode.log_prob(state, pre.obs, pre_phi, pre.actions)))


@pytest.mark.slow  # > 3 s: pre-trains, then compiles a fine-tuning
def test_none_ignores_pretraining_data_and_replay_uses_both(env, bc_setup, bc_pretrained, modes):
  pre, params = bc_setup[2], bc_pretrained[0]
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


@pytest.mark.slow  # > 3 s: pre-trains, then compiles a fine-tuning
def test_adaptive_prior_gate_is_in_unit_interval_and_pushed_low(env, bc_setup, bc_pretrained, modes):
  mode, finetune = modes["adaptive_prior"]
  phi = jax.vmap(env.task_features)(env.tasks)
  state = mode.init(bc_pretrained[0], jax.random.key(4))
  start = mode.gate(state, phi)
  # New expert demos agree with the (well pre-trained) prior, so only the penalty acts on the gate.
  state = finetune(state, bc_setup[2], new_demos(env, 5, list(range(12))), jax.random.key(6),
                   FT_STEPS)
  gate = mode.gate(state, phi)
  assert jnp.all((gate >= 0) & (gate <= 1))
  assert gate.mean() < 0.5 * start.mean()


@pytest.mark.slow  # > 3 s: pre-trains, then compiles a fine-tuning
def test_isolation_cells_change_only_with_their_own_data(env, bc_setup, bc_pretrained, modes):
  mode, finetune = modes["isolation"]
  params = bc_pretrained[0]
  # Cells of 12 tasks in 4 contiguous runs: tasks 0-2 are cell 0.
  chex.assert_trees_all_equal(mode.cell(jax.vmap(env.task_features)(env.tasks)),
                              jnp.repeat(jnp.arange(4), 3))
  state = finetune(mode.init(params, jax.random.key(4)), bc_setup[2], new_demos(env, 5, [0, 1, 2]),
                   jax.random.key(6), FT_STEPS)
  for k in range(4):
    cell = jax.tree.map(lambda p: p[k], state.params)
    same = all(jax.tree.leaves(jax.tree.map(jnp.array_equal, cell, params)))
    assert same == (k != 0)
  # Acting on a task of an untouched cell is the pre-trained policy.
  obs, phi = jnp.ones((5, 2)) * 0.1, env.task_features(env.tasks[7])
  chex.assert_trees_all_close(mode.act(state, obs, phi), bc_setup[0].act(params, obs, phi))


@pytest.mark.slow  # > 3 s: pre-trains, then compiles a fine-tuning
def test_adaptive_prior_gate_opens_only_where_new_data_disagree(env, bc_setup, bc_pretrained, modes):
  """New demos of task 9 whose actions contradict the prior (negated): the gate opens on task 9
  and stays low on the pre-training tasks far from it, where no new data call for change."""
  mode, finetune = modes["adaptive_prior"]
  new = new_demos(env, 5, [9, 9, 9])
  new = new._replace(actions=-new.actions)
  state = finetune(mode.init(bc_pretrained[0], jax.random.key(4)), bc_setup[2], new,
                   jax.random.key(6), 4 * FT_STEPS)
  gate = mode.gate(state, jax.vmap(env.task_features)(env.tasks))
  assert gate[9] > 0.4
  assert float(gate[:8].max()) < 0.1 * float(gate[9])


def test_unknown_mode_raises(env, bc_setup):
  with pytest.raises(ValueError, match="'ewc'"):
    forgetting.make("ewc", env, bc_setup[0], bc_setup[1])


def test_each_mode_takes_only_its_own_options(env, bc_setup):
  assert forgetting.options("adaptive_prior") == ("penalty", "gate_hidden")
  assert forgetting.options("isolation") == ("num_cells",)
  assert forgetting.options("none") == forgetting.options("replay") == ()
  with pytest.raises(ValueError, match=r"'replay' takes the options \[\], not \['penalty'\]"):
    forgetting.make("replay", env, bc_setup[0], bc_setup[1], penalty=0.1)
  with pytest.raises(ValueError, match=r"not \['task_features'\]"):
    forgetting.make("isolation", env, bc_setup[0], bc_setup[1], task_features=None)
