"""Tests of the active loop (`amf/active.py`): config checks, a tiny jitted/vmapped AMF-GP run.

One tiny setting (integrator, H=8, 4 pre-training demos on task 0 only, 2 rounds of 1 demo)
is compiled once per session and shared with test_sweep.py (conftest.py, `gp_loop`).
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import acquisition, data
from amf.active import LoopConfig, choose, make_loop
from amf.task_spaces import target_weights
from amf.envs.integrator import Integrator
from shared import B, K, PRETRAIN, R, SETTINGS, gp_learner as _learner


@pytest.mark.parametrize("kwargs,match", [
    (dict(strategies=("amf", "oracle_pick")), "selection strategy 'oracle_pick'"),
    (dict(strategies=()), "at least one selection strategy"),
    (dict(estimators=("importance", "learnt")), "occupancy estimator 'learnt'"),
    (dict(estimators=()), "at least one occupancy estimator"),
    (dict(stride=0), "stride"),
    (dict(estimators=("importance", "oracle"), pretrain_size=1, budget=2,
          occupancy_samples=4), "exceeds the 3 demonstrations"),
    (dict(budget=2, batch_size=3), "batch_size <= budget"),
    (dict(batch_size=0), "batch_size <= budget"),
    (dict(budget=5, batch_size=2), "whole number of rounds"),
    (dict(pretrain_size=0, estimators=("oracle", "learned")), "pretrain_size"),
    (dict(occupancy_samples=0), "occupancy_samples"),
    (dict(eval_episodes=0), "eval_episodes"),
])
def test_validate_refuses_bad_settings(kwargs, match):
  cfg = LoopConfig(**kwargs)
  with pytest.raises(ValueError, match=match):
    cfg.validate()
  env = Integrator(horizon=8)
  with pytest.raises(ValueError, match=match):  # before anything compiles
    make_loop(env, _learner(env), cfg)


def test_validate_accepts_good_settings():
  LoopConfig(strategies=("amf",), **SETTINGS).validate()
  LoopConfig(strategies=("uniform", "rebalancing"), pretrain_size=0,
             estimators=("oracle",)).validate()
  assert LoopConfig(budget=12, batch_size=3).num_rounds == 4


def test_carry_shapes_and_rounds(gp_loop):
  initial, final = gp_loop["initial"], gp_loop["final"]
  assert final.returns.shape == (2, R + 1, K) and final.success.shape == (2, R + 1, K)
  assert final.asked.shape == (2, R, B) and final.asked.dtype == jnp.int32
  np.testing.assert_array_equal(initial.round, [0, 0])
  np.testing.assert_array_equal(gp_loop["after_one"].round, [1, 1])
  np.testing.assert_array_equal(final.round, [R, R])
  assert np.all((np.asarray(final.asked) >= 0) & (np.asarray(final.asked) < K))
  assert np.all((np.asarray(final.success) >= 0) & (np.asarray(final.success) <= 1))
  assert np.all(np.isfinite(final.returns))
  # Round 0 is the pre-trained policy's evaluation, kept as is.
  np.testing.assert_array_equal(final.returns[:, 0], initial.returns[:, 0])


def test_advance_stops_at_the_budget(gp_loop):
  more = gp_loop["advance_all"](gp_loop["final"], 5)
  jax.tree.map(np.testing.assert_array_equal, more, gp_loop["final"])


def test_pretraining_covers_only_task_zero(gp_loop):
  counts = jax.vmap(lambda d: data.task_counts(d, K))(gp_loop["initial"].data)
  np.testing.assert_array_equal(counts, np.tile([PRETRAIN] + [0] * (K - 1), (2, 1)))


def test_each_round_fills_exactly_its_batch_of_slots(gp_loop):
  for rounds, carry in enumerate([gp_loop["initial"], gp_loop["after_one"], gp_loop["final"]]):
    mask = np.asarray(carry.data.mask)
    assert mask.shape == (2, PRETRAIN + R * B)
    expected = np.arange(PRETRAIN + R * B) < PRETRAIN + rounds * B
    np.testing.assert_array_equal(mask, np.tile(expected, (2, 1)))
  final = gp_loop["final"]
  # The new slots hold demonstrations of the tasks asked for.
  np.testing.assert_array_equal(final.data.task_id[:, PRETRAIN:],
                                np.asarray(final.asked).reshape(2, R * B))
  np.testing.assert_allclose(final.data.task[:, PRETRAIN:, 0],
                             gp_loop["env"].tasks[np.asarray(final.asked).reshape(2, -1), 0])


def test_amf_does_not_ask_for_the_best_covered_task_first(gp_loop):
  # Pre-training covered task 0 only: AMF's first question is about another task.
  asked = np.asarray(gp_loop["final"].asked)
  assert np.all(asked[:, 0] != 0), asked


def test_amf_improves_on_the_tasks_it_asked_for(gp_loop):
  final = gp_loop["final"]
  for run in range(2):
    first = int(final.asked[run, 0, 0])
    assert final.success[run, 1, first] >= final.success[run, 0, first]
    assert final.returns[run, 1, first] > final.returns[run, 0, first]


@pytest.mark.slow  # > 3 s: compiles the unbatched loop
def test_vmapped_runs_equal_single_runs(gp_loop):
  """vmap changes nothing but float rounding: the same pre-trained policy and evaluation, the
  same scores, and each run asks for a task of maximal score. (Whole runs are not compared:
  in this symmetric setting tasks 2 and 10 tie exactly, and which wins depends on rounding
  that differs between a batched and an unbatched program and between CPUs.)"""
  loop = gp_loop["loop"]
  init, alpha, select = jax.jit(loop.init), jax.jit(loop.alpha), jax.jit(loop.select)
  tasks = gp_loop["env"].tasks
  for run in range(2):
    alone = init(gp_loop["keys"][run], gp_loop["weights"][run])
    batched = jax.tree.map(lambda x: x[run], gp_loop["initial"])
    chex.assert_trees_all_close((alone.returns, alone.success),
                                (batched.returns, batched.success), rtol=1e-4, atol=1e-4)
    for carry in (gp_loop["initial"], gp_loop["after_one"]):
      one = jax.tree.map(lambda x: x[run], carry)
      key = jax.random.split(one.key, 5)[1]  # the round's selection key (`one_round`)
      scores = alpha(one, key, tasks)
      batched_scores = jax.vmap(loop.alpha, in_axes=(0, 0, None))(
          carry, jax.vmap(lambda k: jax.random.split(k, 5)[1])(carry.key), tasks)[run]
      # A well-known task's score is a small difference of posterior variances that cancel in
      # float32 (task 0's: about 0.01, batched and alone 1e-3 apart), so the tolerance is
      # relative to the largest score.
      np.testing.assert_allclose(scores, batched_scores, rtol=1e-4,
                                 atol=1e-2 * float(np.abs(scores).max()))
      asked = int(select(one, key).ids[0])
      assert scores[asked] >= scores.max() - 1e-4 * abs(scores.max())


@pytest.mark.slow  # > 3 s: compiles a second loop
def test_cheap_baselines_share_one_program(gp_loop):
  env = gp_loop["env"]
  names = ("uniform", "round_robin", "rebalancing")
  loop = make_loop(env, _learner(env), LoopConfig(strategies=names, **SETTINGS))
  # The pre-training is shared (gp_loop's seed 0), each run picks its strategy by index.
  start = jax.tree.map(lambda x: x[0], gp_loop["initial"])
  runs = jax.tree.map(lambda *x: jnp.stack(x), *[choose(start, strategy=i) for i in range(3)])
  np.testing.assert_array_equal(runs.strategy, [0, 1, 2])
  out = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(runs, R)
  asked = np.asarray(out.asked)[:, :, 0]
  np.testing.assert_array_equal(asked[1], [0, 1])  # round robin
  # Rebalancing never asks for task 0 (4 pre-training demos) and never repeats itself.
  assert 0 not in asked[2] and len(set(asked[2])) == R
  assert np.all((asked[0] >= 0) & (asked[0] < K))


def test_target_weights_and_their_validation():
  np.testing.assert_allclose(target_weights(4), [0.25] * 4)
  np.testing.assert_allclose(target_weights(4, (1, 3)), [0, 0.5, 0, 0.5])
  with pytest.raises(ValueError, match="beyond 4 tasks"):
    target_weights(4, (1, 4))
  with pytest.raises(ValueError, match="distinct task ids"):
    LoopConfig(target_tasks=(2, 2)).validate()


def _nn_learner(env, kernels=("last_layer",)):
  import optax
  from amf import forgetting
  from amf.nn_learner import NNLearner
  from amf.nn_policy import make_policy
  policy = make_policy(2, 2, 2, (16, 16), 0.05)
  return NNLearner(env, policy, forgetting.make("replay", env, policy, optax.adam(1e-3), 32),
                   kernels, 0.1, 50, 20)


# Invariants of AMF's selection, in place of numbers recorded once: each holds for any seed.
INVARIANT_LOOPS = {
    "gp importance": ("gp", dict(estimators=("importance",))),
    "gp uniform": ("gp", dict(estimators=("uniform",))),
    "nn last_layer": ("nn", dict(estimators=("importance",))),
    "nn loss_gradient": ("nn", dict(estimators=("uniform",))),
}


@pytest.fixture(scope="module", params=sorted(INVARIANT_LOOPS))
def invariant_loop(request):
  """A loop and its carry after one round (so the data hold a demonstration AMF asked for)."""
  kind, settings = INVARIANT_LOOPS[request.param]
  env = Integrator(horizon=8)
  learner = (_learner(env) if kind == "gp"
             else _nn_learner(env, (request.param.split()[1],)))
  loop = make_loop(env, learner, LoopConfig(strategies=("amf",), **{**SETTINGS, **settings}))
  weights = data.mix_weights("subset", K, k=3)
  carry = jax.jit(loop.advance, static_argnums=1)(
      jax.jit(loop.init)(jax.random.PRNGKey(5), weights), 1)
  return env, loop, carry


def _candidates(loop, carry, key, noise=0.1):
  """The candidates AMF chooses among with selection key `key`, and their alpha."""
  s = loop.scoring(carry, key)
  return s.tasks, acquisition.scores(s.cov, noise, s.targets, s.candidates)


@pytest.mark.slow  # compiles two paths of four loops
def test_the_shared_finite_path_equals_the_joint_path(invariant_loop):
  """On a finite set the candidates are the targets and one covariance serves both (the
  shared path); the joint path (`alpha`, used by every other proposal and the ascent) builds
  the covariance over the targets' and the candidates' inputs side by side. Both give every
  task the same alpha."""
  env, loop, carry = invariant_loop
  key = jax.random.PRNGKey(9)
  tasks, shared = jax.jit(functools.partial(_candidates, loop))(carry, key)
  np.testing.assert_array_equal(tasks.ids, np.arange(K))
  joint = jax.jit(loop.alpha)(carry, key, env.tasks)
  assert float(jnp.max(shared)) > 1e-3  # something to compare
  np.testing.assert_allclose(joint, shared, rtol=2e-3, atol=2e-4 * float(jnp.max(shared)))


@pytest.mark.slow  # compiles selection of four loops
def test_amf_asks_for_a_task_that_maximises_alpha(invariant_loop):
  env, loop, carry = invariant_loop
  for seed in range(3):
    key = jax.random.PRNGKey(seed)
    asked = jax.jit(loop.select)(carry, key)
    _, alpha = jax.jit(functools.partial(_candidates, loop))(carry, key)
    assert float(alpha[asked.ids[0]]) >= float(alpha.max()) * (1 - 1e-5), (asked.ids, alpha)
    np.testing.assert_array_equal(asked.tasks[0], env.tasks[asked.ids[0]])


def test_loop_settings_come_from_a_config_by_field_name():
  """`LoopConfig.from_config` reads every field it has by name, turning lists into tuples and
  the critic and ascent mappings into their types; a field the config lacks keeps its
  default."""
  import ml_collections
  from amf import occupancy, proposals
  config = ml_collections.ConfigDict(dict(
      estimators=["importance", "uniform"], budget=6, batch_size=2, target_tasks=[1, 2],
      target_region=[[0.1, 0.2]], critic=dict(hidden=[8], steps=5),
      ascent=dict(starts=2, steps=3, learning_rate=0.1), unrelated="ignored"))
  cfg = LoopConfig.from_config(config, ["amf"], "random:5")
  assert cfg == LoopConfig(strategies=("amf",), estimators=("importance", "uniform"), budget=6,
                           batch_size=2, target_tasks=(1, 2), target_region=((0.1, 0.2),),
                           critic=occupancy.Critic(hidden=(8,), steps=5),
                           ascent=proposals.Ascent(2, 3, 0.1), proposal="random",
                           num_candidates=5)
  # Without a count, `grid` is the finite set and the others draw the config's num_candidates;
  # with none given, the config's first proposal.
  config.update(dict(num_candidates=7, proposals=["grid:8", "random"]))
  assert LoopConfig.from_config(config, ["amf"], "grid").num_candidates == 0
  assert LoopConfig.from_config(config, ["amf"], "random").num_candidates == 7
  first = LoopConfig.from_config(config, ["amf"])
  assert (first.proposal, first.num_candidates) == ("grid", 8)
  with pytest.raises(ValueError, match="positive integer"):
    LoopConfig.from_config(config, ["amf"], "grid:0")
