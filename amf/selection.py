"""Selection strategies: which tasks to ask the expert for next. One signature, by name.

`strategy(problem, key) -> (B,) task ids`. The GP scores are built only when a strategy asks
for them (`problem.amf`, `problem.uncertainty`), so cheap baselines compile without them.
"""
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from amf import registry


class Problem(NamedTuple):
  """What a strategy may look at when choosing a batch."""
  round: jax.Array         # () int: rounds done so far
  counts: jax.Array        # (K,) demonstrations per task so far, pre-training included
  target: jax.Array        # (K,) target task distribution mu
  batch_size: int          # B (static)
  amf: Callable[[jax.Array], jax.Array]  # key -> (B,) AMF's greedy batch
  uncertainty: Optional[Callable[[jax.Array], jax.Array]] = None  # key -> (B,) undirected


def amf(problem: Problem, key: jax.Array) -> jax.Array:
  return problem.amf(key)


def uncertainty(problem: Problem, key: jax.Array) -> jax.Array:
  """Undirected: the task whose own estimated states have the most posterior variance."""
  return problem.uncertainty(key)


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


def get(name: str):
  return registry.lookup(STRATEGIES, name, "selection strategy")
