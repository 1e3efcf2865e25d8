"""Tests of the selection strategies and the name registry."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import registry, selection
from amf.selection import Problem


def _problem(counts=(0, 0, 0, 0), target=None, batch_size=1, round_=0, amf=None):
  counts = jnp.asarray(counts, jnp.int32)
  if target is None:
    target = jnp.full(counts.shape, 1.0 / counts.shape[0])
  return Problem(jnp.int32(round_), counts, jnp.asarray(target, jnp.float32), batch_size,
                 amf if amf is not None else (lambda key: jnp.zeros(batch_size, jnp.int32)))


def test_uniform_draws_follow_the_target_and_skip_zero_probability_tasks():
  target = np.array([0.5, 0.0, 0.3, 0.0, 0.2])
  problem = _problem(counts=(0,) * 5, target=target, batch_size=20000)
  ids = np.asarray(jax.jit(lambda k: selection.uniform(problem, k))(jax.random.PRNGKey(0)))
  assert ids.shape == (20000,)
  freq = np.bincount(ids, minlength=5) / ids.size
  assert freq[1] == 0 and freq[3] == 0
  np.testing.assert_allclose(freq, target, atol=0.02)


def test_uniform_depends_on_the_key():
  problem = _problem(counts=(0,) * 12, batch_size=8)
  a = selection.uniform(problem, jax.random.PRNGKey(0))
  b = selection.uniform(problem, jax.random.PRNGKey(1))
  assert not np.array_equal(a, b)


def test_round_robin_cycles_through_the_tasks():
  k, b = 5, 3
  seq = [np.asarray(selection.round_robin(_problem((0,) * k, batch_size=b, round_=r), None))
         for r in range(5)]
  np.testing.assert_array_equal(np.concatenate(seq), np.arange(5 * b) % k)
  np.testing.assert_array_equal(seq[1], [3, 4, 0])


def test_rebalancing_picks_the_least_covered_task():
  for seed in range(5):
    ids = selection.rebalancing(_problem(counts=(3, 1, 0, 2)), jax.random.PRNGKey(seed))
    np.testing.assert_array_equal(ids, [2])


def test_rebalancing_counts_its_own_picks_within_a_batch():
  ids = np.asarray(selection.rebalancing(_problem(counts=(3, 1, 0, 2), batch_size=3),
                                         jax.random.PRNGKey(0)))
  assert ids[0] == 2
  assert sorted(ids[1:]) == [1, 2]  # after the first pick, tasks 1 and 2 both have one demo
  # A batch of 8 over counts summing to 6 levels everything out at 14 / 4 per task.
  ids = np.asarray(selection.rebalancing(_problem(counts=(3, 1, 0, 2), batch_size=8),
                                         jax.random.PRNGKey(1)))
  final = np.array([3, 1, 0, 2]) + np.bincount(ids, minlength=4)
  assert final.max() - final.min() <= 1


def test_rebalancing_breaks_ties_at_random():
  firsts = {int(selection.rebalancing(_problem(counts=(1, 1, 1, 1)), jax.random.PRNGKey(s))[0])
            for s in range(12)}
  assert len(firsts) > 1


def test_rebalancing_never_asks_outside_the_target_support():
  target = np.array([0.0, 0.5, 0.5, 0.0])
  ids = np.asarray(selection.rebalancing(
      _problem(counts=(0, 4, 5, 0), target=target, batch_size=3), jax.random.PRNGKey(0)))
  # Tasks 0 and 3 have no demos but are not targets; task 1 first, then 1 and 2 (tied).
  assert ids[0] == 1 and sorted(ids[1:]) == [1, 2]


def test_amf_strategy_delegates_to_the_problem():
  seen = []

  def fake_amf(key):
    seen.append(key)
    return jnp.array([7, 2], jnp.int32)

  key = jax.random.PRNGKey(4)
  ids = selection.amf(_problem(counts=(0,) * 12, batch_size=2, amf=fake_amf), key)
  np.testing.assert_array_equal(ids, [7, 2])
  assert len(seen) == 1 and np.array_equal(seen[0], key)


def test_baselines_never_call_amf():
  def exploding(key):
    raise AssertionError("baselines must not build AMF's scores")

  problem = _problem(counts=(0,) * 4, batch_size=2, amf=exploding)
  for name in ("uniform", "round_robin", "rebalancing"):
    assert selection.get(name)(problem, jax.random.PRNGKey(0)).shape == (2,)


def test_registry_get():
  for name in ("amf", "uniform", "round_robin", "rebalancing"):
    assert selection.get(name) is selection.STRATEGIES[name]


@pytest.mark.parametrize("name", ["greedy", "AMF", "random"])
def test_unknown_strategy_raises(name):
  with pytest.raises(ValueError, match=f"selection strategy '{name}'"):
    selection.get(name)


def test_registry_lookup_error_lists_the_choices():
  with pytest.raises(ValueError, match=r"Unknown widget 'c'; choose one of \['a', 'b'\]"):
    registry.lookup({"b": 2, "a": 1}, "c", "widget")
  assert registry.lookup({"a": 1}, "a", "widget") == 1


def test_uncertainty_calls_its_own_scores():
  problem = _problem(batch_size=2)._replace(
      uncertainty=lambda key: jnp.array([3, 1], jnp.int32))
  np.testing.assert_array_equal(selection.uncertainty(problem, jax.random.PRNGKey(0)), [3, 1])
  assert selection.get("uncertainty") is selection.uncertainty
