"""Tests of the selection strategies (`amf/selection.py`)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import acquisition, selection
from amf.proposals import TaskBatch
from amf.selection import Problem


def _problem(counts=(0, 0, 0, 0), target=None, batch_size=1, round_=0, scoring=None,
             demos=(), targets=None):
  """A finite problem over K tasks with parameters `10 * id` (1-D), features = parameters.

  `demos`: task parameters of the filled dataset slots; `targets`: other target tasks than
  the finite set (a continuous problem's draws from mu).
  """
  counts = jnp.asarray(counts, jnp.int32)
  k = counts.shape[0]
  tasks = 10.0 * jnp.arange(k, dtype=jnp.float32)[:, None]
  ids = jnp.arange(k, dtype=jnp.int32)
  if targets is None:
    targets = TaskBatch(tasks, ids)
  else:
    targets = TaskBatch(jnp.asarray(targets, jnp.float32)[:, None],
                        jnp.full((len(targets),), -1, jnp.int32))
  if target is None:
    target = jnp.full(targets.ids.shape, 1.0 / targets.ids.shape[0])
  target = jnp.asarray(target, jnp.float32)

  def draw(key, n):
    chosen = jax.random.choice(key, k, (n,), p=target)
    return TaskBatch(tasks[chosen], chosen)

  demo_tasks = jnp.asarray(demos, jnp.float32).reshape(-1, 1)
  demos_ = TaskBatch(jnp.concatenate([demo_tasks, jnp.zeros((2, 1))]),
                     jnp.full((demo_tasks.shape[0] + 2,), -1, jnp.int32))
  mask = jnp.arange(demo_tasks.shape[0] + 2) < demo_tasks.shape[0]  # two empty slots
  scoring = scoring if scoring is not None else _scoring(k)
  return Problem(round=jnp.int32(round_), counts=counts, mu=target, batch_size=batch_size,
                 scoring=scoring, tasks=tasks, targets=targets, draw=draw,
                 features=lambda c: c, demos=demos_, demo_mask=mask)


NOISE = 0.3


def _scoring(num_tasks, m=2, h=3, seed=0):
  """A random GP view of `num_tasks` tasks: covariance over their `m x h` estimated inputs."""
  rng = np.random.default_rng(seed)
  n = num_tasks * m * h
  features = rng.normal(size=(n, 4))
  cov = jnp.asarray(features @ features.T / 4 + 0.1 * np.eye(n), jnp.float32)
  index = jnp.arange(n).reshape(num_tasks, m, h)
  weights = jnp.asarray(rng.dirichlet(np.ones(m), num_tasks), jnp.float32)
  targets = acquisition.Targets(jnp.arange(n), jnp.full(n, 1.0 / n), jnp.full(n, 1e-6))
  tasks = TaskBatch(10.0 * jnp.arange(num_tasks, dtype=jnp.float32)[:, None],
                    jnp.arange(num_tasks, dtype=jnp.int32))
  return lambda key: selection.Scored(cov, jnp.asarray(NOISE), targets,
                                      acquisition.Candidates(index, weights), tasks)


def test_uniform_draws_follow_the_target_and_skip_zero_probability_tasks():
  target = np.array([0.5, 0.0, 0.3, 0.0, 0.2])
  problem = _problem(counts=(0,) * 5, target=target, batch_size=20000)
  ask = jax.jit(lambda k: selection.uniform(problem, k))(jax.random.PRNGKey(0))
  ids = np.asarray(ask.ids)
  np.testing.assert_array_equal(ask.tasks[:, 0], 10.0 * ids)
  assert ids.shape == (20000,)
  freq = np.bincount(ids, minlength=5) / ids.size
  assert freq[1] == 0 and freq[3] == 0
  np.testing.assert_allclose(freq, target, atol=0.02)


def test_uniform_depends_on_the_key():
  problem = _problem(counts=(0,) * 12, batch_size=8)
  a = selection.uniform(problem, jax.random.PRNGKey(0)).ids
  b = selection.uniform(problem, jax.random.PRNGKey(1)).ids
  assert not np.array_equal(a, b)


def test_round_robin_cycles_through_the_tasks():
  k, b = 5, 3
  seq = [np.asarray(selection.round_robin(_problem((0,) * k, batch_size=b, round_=r), None).ids)
         for r in range(5)]
  np.testing.assert_array_equal(np.concatenate(seq), np.arange(5 * b) % k)
  np.testing.assert_array_equal(seq[1], [3, 4, 0])


def test_rebalancing_picks_the_least_covered_task():
  for seed in range(5):
    ids = selection.rebalancing(_problem(counts=(3, 1, 0, 2)), jax.random.PRNGKey(seed)).ids
    np.testing.assert_array_equal(ids, [2])


def test_rebalancing_counts_its_own_picks_within_a_batch():
  ids = np.asarray(selection.rebalancing(_problem(counts=(3, 1, 0, 2), batch_size=3),
                                         jax.random.PRNGKey(0)).ids)
  assert ids[0] == 2
  assert sorted(ids[1:]) == [1, 2]  # after the first pick, tasks 1 and 2 both have one demo
  # A batch of 8 over counts summing to 6 levels everything out at 14 / 4 per task.
  ids = np.asarray(selection.rebalancing(_problem(counts=(3, 1, 0, 2), batch_size=8),
                                         jax.random.PRNGKey(1)).ids)
  final = np.array([3, 1, 0, 2]) + np.bincount(ids, minlength=4)
  assert final.max() - final.min() <= 1


@pytest.mark.slow  # 2-3 s of compilation
def test_rebalancing_breaks_ties_at_random():
  firsts = {int(selection.rebalancing(_problem(counts=(1, 1, 1, 1)),
                                    jax.random.PRNGKey(s)).ids[0])
            for s in range(12)}
  assert len(firsts) > 1


def test_rebalancing_never_asks_outside_the_target_support():
  target = np.array([0.0, 0.5, 0.5, 0.0])
  ids = np.asarray(selection.rebalancing(
      _problem(counts=(0, 4, 5, 0), target=target, batch_size=3), jax.random.PRNGKey(0)).ids)
  # Tasks 0 and 3 have no demos but are not targets; task 1 first, then 1 and 2 (tied).
  assert ids[0] == 1 and sorted(ids[1:]) == [1, 2]


@pytest.mark.slow  # 3 s of compilation
def test_scored_strategies_run_their_rule_on_the_problems_scores():
  problem = _problem(counts=(0,) * 6, batch_size=3)
  cov, _, targets, candidates, _ = problem.scoring(None)
  ask = selection.amf(problem, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(ask.ids,
                                acquisition.greedy_batch(cov, NOISE, targets, candidates, 3)[0])
  np.testing.assert_array_equal(ask.tasks[:, 0], 10.0 * ask.ids)  # the candidates' parameters
  own = selection.uncertainty(problem, jax.random.PRNGKey(0)).ids
  # Undirected: the first pick has the most posterior variance on its own estimated inputs.
  assert own[0] == int(jnp.argmax(acquisition.own_variance(cov, candidates)))
  assert own.shape == (3,)


def test_baselines_never_build_the_scores():
  def exploding(key):
    raise AssertionError("baselines must not build the GP's scores")

  problem = _problem(counts=(0,) * 4, batch_size=2, scoring=exploding)
  for name in set(selection.STRATEGIES) - set(selection.SCORED):
    ask = selection.get(name)(problem, jax.random.PRNGKey(0))
    assert ask.ids.shape == (2,) and ask.tasks.shape == (2, 1)
  with pytest.raises(AssertionError, match="must not build"):
    selection.amf(problem, jax.random.PRNGKey(0))


@pytest.mark.slow  # 3 s of compilation
def test_coverage_asks_for_the_target_farthest_from_every_demonstration():
  # Targets at 0, 10, ..., 50; demos at 0 and 20: 50 is farthest (30 away). Counting it, the
  # nearest distances are 0, 10, 0, 10, 10, 0, and the first maximum (task 1) comes next.
  problem = _problem(counts=(0,) * 6, batch_size=2, demos=(0.0, 20.0))
  np.testing.assert_array_equal(selection.coverage(problem, None).ids, [5, 1])
  # Tasks outside the target's support are never asked for.
  target = np.array([0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
  ask = selection.coverage(_problem(counts=(0,) * 6, target=target, demos=(0.0,)), None)
  np.testing.assert_array_equal(ask.ids, [1])


@pytest.mark.slow  # 2 s of compilation
def test_coverage_picks_among_continuous_targets_and_returns_their_parameters():
  problem = _problem(counts=(0,) * 3, targets=(1.5, 7.0, 33.0), demos=(30.0,), batch_size=2)
  ask = selection.coverage(problem, None)
  np.testing.assert_allclose(ask.tasks[:, 0], [1.5, 7.0])  # 1.5 is farthest from 30, then 7
  np.testing.assert_array_equal(ask.ids, [-1, -1])


@pytest.mark.parametrize("name", ["greedy", "AMF", "random"])
def test_unknown_strategy_raises(name):
  with pytest.raises(ValueError, match=f"selection strategy '{name}'"):
    selection.get(name)
