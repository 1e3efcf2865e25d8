"""Selection strategies: which tasks to ask the expert for next. One signature, by name.

`strategy(problem, key) -> TaskBatch` of B tasks (parameters and finite-set ids). A strategy
that scores tasks with the GP model of the expert calls `problem.scoring(key)`, which proposes
the candidates (`amf.proposals`), estimates their and the targets' states and builds the
posterior covariance over them; the others never call it, so they compile without it. Those
that do are listed in `SCORED`: each runs in a program of its own (under `vmap`, `lax.switch`
computes every branch), the cheap ones share one (`programs`). `round_robin` and `rebalancing`
count demonstrations per task of a finite set (`FINITE_ONLY`); `coverage` is their analogue
in a continuous task space.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from amf import acquisition, registry
from amf.proposals import TaskBatch


class Scored(NamedTuple):
  """The GP's view of a round: the posterior covariance over the targets' and candidates'
  estimated inputs, the observation noise std of the model, their parts of the covariance
  (`amf.acquisition`), and the candidate tasks."""
  cov: jax.Array
  noise: jax.Array
  targets: acquisition.Targets
  candidates: acquisition.Candidates
  tasks: TaskBatch


class Problem(NamedTuple):
  """What a strategy may look at when choosing a batch."""
  round: jax.Array         # () int: rounds done so far
  counts: jax.Array        # (K,) demonstrations per finite-set task so far, pre-training included
  mu: jax.Array            # (T,) weights of the target tasks (mu on them)
  batch_size: int          # B (static)
  scoring: Callable[[jax.Array], Scored]  # costly: only scored strategies call it
  tasks: jax.Array         # (K, P) the finite task set
  targets: TaskBatch       # (T,) the target tasks
  draw: Callable[[jax.Array, int], TaskBatch]  # (key, n) -> n tasks drawn from mu
  features: Callable[[jax.Array], jax.Array]   # phi(c) of one task (P,)
  demos: TaskBatch         # (M,) the tasks of every slot of the dataset so far
  demo_mask: jax.Array     # (M,) which slots are filled


def _pick(tasks: TaskBatch, index: jax.Array) -> TaskBatch:
  return TaskBatch(tasks.tasks[index], tasks.ids[index])


def _finite(problem: Problem, ids: jax.Array) -> TaskBatch:
  return TaskBatch(problem.tasks[ids], ids.astype(jnp.int32))


def amf(problem: Problem, key: jax.Array) -> TaskBatch:
  """AMF (docs/design.md §2): greedy in the expected information gain about the expert on the
  targets."""
  s = problem.scoring(key)
  return _pick(s.tasks, acquisition.greedy_batch(s.cov, s.noise, s.targets, s.candidates,
                                                 problem.batch_size)[0])


def uncertainty(problem: Problem, key: jax.Array) -> TaskBatch:
  """Undirected: the task whose own estimated states have the most posterior variance."""
  s = problem.scoring(key)
  return _pick(s.tasks, acquisition.greedy(s.cov, s.noise, s.candidates,
                                           problem.batch_size,
                                           lambda cov: acquisition.own_variance(cov,
                                                                                s.candidates))[0])


def uniform(problem: Problem, key: jax.Array) -> TaskBatch:
  """Tasks drawn from the target distribution."""
  return problem.draw(key, problem.batch_size)


def round_robin(problem: Problem, key: jax.Array) -> TaskBatch:
  del key
  num_tasks = problem.tasks.shape[0]
  return _finite(problem, (problem.round * problem.batch_size
                           + jnp.arange(problem.batch_size)) % num_tasks)


def coverage(problem: Problem, key: jax.Array) -> TaskBatch:
  """Privileged: the target task farthest, in task features, from every demonstration so far.

  `rebalancing`'s analogue for any task space; within a batch each pick counts as a
  demonstration.
  """
  del key
  phi = jax.vmap(problem.features)
  targets, demos = phi(problem.targets.tasks), phi(problem.demos.tasks)
  distance = lambda a, b: jnp.linalg.norm(a[:, None] - b[None], axis=-1)
  nearest = jnp.where(problem.demo_mask, distance(targets, demos), jnp.inf).min(-1)
  # Tasks outside the target's support are never asked for.
  nearest = jnp.where(problem.mu > 0, nearest, -jnp.inf)

  def pick(nearest, _):
    best = jnp.argmax(nearest)
    return jnp.minimum(nearest, distance(targets, targets[best][None])[:, 0]), best

  _, chosen = jax.lax.scan(pick, nearest, None, problem.batch_size)
  return _pick(problem.targets, chosen)


def rebalancing(problem: Problem, key: jax.Array) -> TaskBatch:
  """Privileged: the target task with the fewest demonstrations, pre-training included.

  Ties are broken at random; within a batch each pick counts towards the next.
  """
  jitter = jax.random.uniform(key, problem.counts.shape, maxval=0.5)
  # Tasks outside the target's support are never asked for.
  penalty = jnp.where(problem.mu > 0, 0.0, jnp.inf)

  def pick(counts, _):
    best = jnp.argmin(counts + jitter + penalty)
    return counts.at[best].add(1), best

  _, chosen = jax.lax.scan(pick, problem.counts.astype(jnp.float32), None, problem.batch_size)
  return _finite(problem, chosen)


STRATEGIES = {"amf": amf, "uncertainty": uncertainty, "uniform": uniform,
              "round_robin": round_robin, "rebalancing": rebalancing, "coverage": coverage}
SCORED = ("amf", "uncertainty")  # strategies that call `problem.scoring`
FINITE_ONLY = ("round_robin", "rebalancing")  # strategies that need a finite task set


def get(name: str):
  return registry.lookup(STRATEGIES, name, "selection strategy")
