"""Selection strategies: which tasks to ask the expert for next. One signature, by name.

`strategy(problem, key) -> (B,) task ids`. A strategy that scores tasks with the GP model of
the expert calls `problem.scoring(key)`, which estimates every task's states and builds the
posterior covariance over them; the others never call it, so they compile without it. Those
that do are listed in `SCORED`: each runs in a program of its own (under `vmap`, `lax.switch`
computes every branch), the cheap ones share one (`programs`).
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from amf import acquisition, registry

# key -> (posterior covariance over every task's estimated inputs, the targets' part of it,
# the candidates' part of it); see `amf.acquisition`.
Scoring = Callable[[jax.Array], tuple[jax.Array, acquisition.Targets, acquisition.Candidates]]


class Problem(NamedTuple):
  """What a strategy may look at when choosing a batch."""
  round: jax.Array         # () int: rounds done so far
  counts: jax.Array        # (K,) demonstrations per task so far, pre-training included
  target: jax.Array        # (K,) target task distribution mu
  batch_size: int          # B (static)
  scoring: Scoring         # the GP's view of every task (costly: only scored strategies call it)
  noise: float             # observation noise std of the GP model of the expert


def amf(problem: Problem, key: jax.Array) -> jax.Array:
  """AMF (AMF.md §3): greedy in the expected information gain about the expert on the targets."""
  cov, targets, candidates = problem.scoring(key)
  return acquisition.greedy_batch(cov, problem.noise, targets, candidates, problem.batch_size)


def uncertainty(problem: Problem, key: jax.Array) -> jax.Array:
  """Undirected: the task whose own estimated states have the most posterior variance."""
  cov, _, candidates = problem.scoring(key)
  return acquisition.greedy(cov, problem.noise, candidates, problem.batch_size,
                            lambda cov: acquisition.own_variance(cov, candidates))


def uniform(problem: Problem, key: jax.Array) -> jax.Array:
  """Tasks drawn from the target distribution."""
  k = problem.target.shape[0]
  return jax.random.choice(key, k, (problem.batch_size,), p=problem.target)


def round_robin(problem: Problem, key: jax.Array) -> jax.Array:
  del key
  k = problem.target.shape[0]
  return (problem.round * problem.batch_size + jnp.arange(problem.batch_size)) % k


def rebalancing(problem: Problem, key: jax.Array) -> jax.Array:
  """Privileged: the target task with the fewest demonstrations, pre-training included.

  Ties are broken at random; within a batch each pick counts towards the next.
  """
  jitter = jax.random.uniform(key, problem.counts.shape, maxval=0.5)
  # Tasks outside the target's support are never asked for.
  penalty = jnp.where(problem.target > 0, 0.0, jnp.inf)

  def pick(counts, _):
    best = jnp.argmin(counts + jitter + penalty)
    return counts.at[best].add(1), best

  _, chosen = jax.lax.scan(pick, problem.counts.astype(jnp.float32), None, problem.batch_size)
  return chosen


STRATEGIES = {"amf": amf, "uncertainty": uncertainty, "uniform": uniform,
              "round_robin": round_robin, "rebalancing": rebalancing}
SCORED = ("amf", "uncertainty")  # strategies that call `problem.scoring`


def programs(names) -> list[tuple[str, ...]]:
  """Splits strategies into programs: each scored one alone, the cheap ones together."""
  scored = tuple(n for n in names if n in SCORED)
  cheap = tuple(n for n in names if n not in SCORED)
  return [(n,) for n in scored] + ([cheap] if cheap else [])


def get(name: str):
  return registry.lookup(STRATEGIES, name, "selection strategy")
