"""Tests of the active loop: config checks, a tiny jitted/vmapped AMF-GP run, sweep resumption.

One tiny setting (integrator, H=8, 4 pre-training demos on task 0 only, 2 rounds of 1 demo)
is compiled once per module and shared.
"""
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import checkpoint, data, gp_kernels, sweep
from amf.active import LoopConfig, choose, make_loop, target_weights
from amf.envs.integrator import Integrator
from amf.gp_policy import GPPolicy

K, R, B, PRETRAIN = 12, 2, 1, 4
SETTINGS = dict(pretrain_size=PRETRAIN, budget=R * B, batch_size=B, eval_episodes=2,
                occupancy_samples=2)


def _learner(env):
  kernel = gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0)
  return GPPolicy(env, kernel, noise=0.1, action_std=0.1)


@pytest.fixture(scope="module")
def setup():
  env = Integrator(horizon=8)
  loop = make_loop(env, _learner(env), LoopConfig(strategies=("amf",), **SETTINGS), noise=0.1)
  keys = sweep.seed_keys(0, [0, 1])
  weights = jnp.stack([data.mix_weights("subset", K, k=1)] * 2)
  initial = jax.jit(jax.vmap(loop.init))(keys, weights)
  advance_all = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))
  after_one = advance_all(initial, 1)
  final = advance_all(initial, R)
  return dict(env=env, loop=loop, keys=keys, weights=weights, initial=initial,
              advance_all=advance_all, after_one=after_one, final=final)


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
    make_loop(env, _learner(env), cfg, noise=0.1)


def test_validate_accepts_good_settings():
  LoopConfig(strategies=("amf",), **SETTINGS).validate()
  LoopConfig(strategies=("uniform", "rebalancing"), pretrain_size=0,
             estimators=("oracle",)).validate()
  assert LoopConfig(budget=12, batch_size=3).num_rounds == 4


def test_carry_shapes_and_rounds(setup):
  initial, final = setup["initial"], setup["final"]
  assert final.returns.shape == (2, R + 1, K) and final.success.shape == (2, R + 1, K)
  assert final.asked.shape == (2, R, B) and final.asked.dtype == jnp.int32
  np.testing.assert_array_equal(initial.round, [0, 0])
  np.testing.assert_array_equal(setup["after_one"].round, [1, 1])
  np.testing.assert_array_equal(final.round, [R, R])
  assert np.all((np.asarray(final.asked) >= 0) & (np.asarray(final.asked) < K))
  assert np.all((np.asarray(final.success) >= 0) & (np.asarray(final.success) <= 1))
  assert np.all(np.isfinite(final.returns))
  # Round 0 is the pre-trained policy's evaluation, kept as is.
  np.testing.assert_array_equal(final.returns[:, 0], initial.returns[:, 0])


def test_advance_stops_at_the_budget(setup):
  more = setup["advance_all"](setup["final"], 5)
  jax.tree.map(np.testing.assert_array_equal, more, setup["final"])


def test_pretraining_covers_only_task_zero(setup):
  counts = jax.vmap(lambda d: data.task_counts(d, K))(setup["initial"].data)
  np.testing.assert_array_equal(counts, np.tile([PRETRAIN] + [0] * (K - 1), (2, 1)))


def test_each_round_fills_exactly_its_batch_of_slots(setup):
  for rounds, carry in enumerate([setup["initial"], setup["after_one"], setup["final"]]):
    mask = np.asarray(carry.data.mask)
    assert mask.shape == (2, PRETRAIN + R * B)
    expected = np.arange(PRETRAIN + R * B) < PRETRAIN + rounds * B
    np.testing.assert_array_equal(mask, np.tile(expected, (2, 1)))
  final = setup["final"]
  # The new slots hold demonstrations of the tasks asked for.
  np.testing.assert_array_equal(final.data.task_id[:, PRETRAIN:],
                                np.asarray(final.asked).reshape(2, R * B))
  np.testing.assert_allclose(final.data.task[:, PRETRAIN:, 0],
                             setup["env"].tasks[np.asarray(final.asked).reshape(2, -1), 0])


def test_amf_does_not_ask_for_the_best_covered_task_first(setup):
  # Pre-training covered task 0 only: AMF's first question is about another task.
  asked = np.asarray(setup["final"].asked)
  assert np.all(asked[:, 0] != 0), asked


def test_amf_improves_on_the_tasks_it_asked_for(setup):
  final = setup["final"]
  for run in range(2):
    first = int(final.asked[run, 0, 0])
    assert final.success[run, 1, first] >= final.success[run, 0, first]
    assert final.returns[run, 1, first] > final.returns[run, 0, first]


def test_vmapped_runs_equal_single_runs(setup):
  loop = setup["loop"]
  init, advance = jax.jit(loop.init), jax.jit(loop.advance)
  for run in range(2):
    alone = advance(init(setup["keys"][run], setup["weights"][run]), R)
    batched = jax.tree.map(lambda x: x[run], setup["final"])
    chex.assert_trees_all_close((alone.returns, alone.success), (batched.returns,
                                                                 batched.success), rtol=1e-4,
                                atol=1e-4)
    np.testing.assert_array_equal(alone.asked, batched.asked)
    np.testing.assert_array_equal(alone.data.mask, batched.data.mask)


LABELS = ["seed 0", "seed 1"]


def test_sweep_run_resumes_from_its_checkpoint(setup, tmp_path):
  loop, initial, final = setup["loop"], setup["initial"], setup["final"]
  ckpt = str(tmp_path / "ckpt")
  first = sweep.run("amf", loop.advance, initial, 1, ckpt, 1, LABELS)
  np.testing.assert_array_equal(first.round, [1, 1])
  chex.assert_trees_all_close(first, setup["after_one"], rtol=1e-5, atol=1e-5)
  # Resuming must start from the saved round 1, so the initial carry given now (garbage of
  # the right shapes) must not matter.
  garbage = jax.tree.map(jnp.zeros_like, initial)
  resumed = sweep.run("amf", loop.advance, garbage, R, ckpt, 1, LABELS)
  chex.assert_trees_all_close(resumed, final, rtol=1e-5, atol=1e-5)
  assert checkpoint.Progress(ckpt).latest(initial)[0] == R
  # A finished sweep only restores.
  again = sweep.run("amf", lambda c, n: pytest.fail("nothing left to run"), garbage, R, ckpt, 1,
                    LABELS)
  chex.assert_trees_all_close(again, final, rtol=0, atol=0)


def test_sweep_rows_are_tidy(setup):
  final = setup["final"]
  target = np.full(K, 1.0 / K)
  metrics, per_task, allocations = sweep.rows(final, "integrator", "amf", ["k=1", "k=1"],
                                              [0, 1], target)
  assert len(metrics) == 2 * (R + 1) and len(per_task) == 2 * (R + 1) * K
  assert len(allocations) == 2 * R * B
  row = metrics[R + 1 + 2]  # seed 1, round 2
  assert (row["seed"], row["round"], row["num_demos"], row["variant"]) == (1, 2, 2 * B, "k=1")
  np.testing.assert_allclose(row["success"], float(np.mean(final.success[1, 2])), rtol=1e-6)
  np.testing.assert_allclose(row["return"], float(np.mean(final.returns[1, 2])), rtol=1e-5)
  assert [a["task"] for a in allocations[:R * B]] == np.asarray(final.asked[0]).ravel().tolist()
  assert [a["round"] for a in allocations[:R * B]] == list(range(1, R + 1))


def test_cheap_baselines_share_one_program(setup):
  env = setup["env"]
  names = ("uniform", "round_robin", "rebalancing")
  loop = make_loop(env, _learner(env), LoopConfig(strategies=names, **SETTINGS), noise=0.1)
  # The pre-training is shared (setup's seed 0), each run picks its strategy by index.
  start = jax.tree.map(lambda x: x[0], setup["initial"])
  runs = jax.tree.map(lambda *x: jnp.stack(x), *[choose(start, strategy=i) for i in range(3)])
  np.testing.assert_array_equal(runs.strategy, [0, 1, 2])
  out = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(runs, R)
  asked = np.asarray(out.asked)[:, :, 0]
  np.testing.assert_array_equal(asked[1], [0, 1])  # round robin
  # Rebalancing never asks for task 0 (4 pre-training demos) and never repeats itself.
  assert 0 not in asked[2] and len(set(asked[2])) == R
  assert np.all((asked[0] >= 0) & (asked[0] < K))


def test_sweep_run_stops_at_num_rounds_when_chunks_do_not_divide_it(setup, tmp_path):
  # A stand-in loop with no budget of its own: sweep.run alone must stop at num_rounds.
  count = lambda c, n: c._replace(round=c.round + n)
  out = sweep.run("count", count, setup["initial"], 3, str(tmp_path / "ckpt"), 2, LABELS)
  np.testing.assert_array_equal(out.round, [3, 3])


def test_target_weights_and_their_validation():
  np.testing.assert_allclose(target_weights(4), [0.25] * 4)
  np.testing.assert_allclose(target_weights(4, (1, 3)), [0, 0.5, 0, 0.5])
  with pytest.raises(ValueError, match="beyond 4 tasks"):
    target_weights(4, (1, 4))
  with pytest.raises(ValueError, match="distinct task ids"):
    LoopConfig(target_tasks=(2, 2)).validate()


_SHARDED = textwrap.dedent("""
    import os, tempfile
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, jax.numpy as jnp, numpy as np
    from amf import data, gp_kernels, sweep
    from amf.active import LoopConfig, make_loop
    from amf.envs.integrator import Integrator
    from amf.gp_policy import GPPolicy
    assert jax.device_count() == 2
    env = Integrator(horizon=8)
    learner = GPPolicy(env, gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0), 0.1, 0.1)
    loop = make_loop(env, learner, LoopConfig(pretrain_size=4, budget=2, eval_episodes=2,
                                              occupancy_samples=2), 0.1)
    initial = jax.jit(jax.vmap(loop.init))(sweep.seed_keys(0, [0, 1]),
                                           jnp.stack([data.mix_weights("subset", 12, k=1)] * 2))
    sharded = sweep.shard(initial)
    assert len(sharded.round.sharding.device_set) == 2
    out = sweep.run("amf", loop.advance, initial, 2, tempfile.mkdtemp(), 2, ["a", "b"])
    assert len(out.asked.sharding.device_set) == 2
    single = jax.jit(jax.vmap(loop.advance, in_axes=(0, None)))(initial, 2)
    np.testing.assert_array_equal(np.asarray(out.asked), np.asarray(single.asked))
    print("ok")
""")


def test_sweep_shards_runs_over_devices():
  """Two (forced) host devices: the runs axis is split over both, with unchanged results."""
  result = subprocess.run([sys.executable, "-c", _SHARDED], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().endswith("ok")
