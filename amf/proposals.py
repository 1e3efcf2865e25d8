"""Candidate proposals: which tasks AMF scores each round. One signature, by name (ablation 4).

`proposal(ctx, key) -> TaskBatch` gives the candidate tasks a scored strategy chooses among:

- `grid`: the finite task set; `grid:G`, G tasks on a product grid over the whole task box
  `C` (`TaskBox.grid`: every task parameter, e.g. angle and radius).
- `random`: G fresh draws from the target distribution `mu` each round.
- `continuous`: no discretisation. G draws from `mu`, the `starts` best by `alpha` are
  refined by projected gradient ascent on `alpha(c)` (optax Adam in the unit cube of `C`, the
  gradient flowing through the kernel and the occupancy weights), and the draws together with
  the refined tasks are the candidates, so the pick is never worse than `random`'s.
"""
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from amf import registry
from amf.envs.base import TaskBox


class TaskBatch(NamedTuple):
  """Tasks as parameters `tasks` (n, P), with their finite-set ids `ids` (n,), -1 off it."""
  tasks: jax.Array
  ids: jax.Array


class Ascent(NamedTuple):
  """The `continuous` proposal's search: starts, Adam steps, and the initial step size in the
  unit cube, decayed to zero over the steps (cosine) so the last iterates settle on a maximum
  instead of circling it at Adam's constant step length."""
  starts: int = 4
  steps: int = 20
  learning_rate: float = 0.05

  def validate(self, num_candidates: int) -> None:
    if not 1 <= self.starts <= num_candidates:
      raise ValueError(f"The continuous proposal needs 1 <= starts <= num_candidates, got "
                       f"starts={self.starts}, num_candidates={num_candidates}.")
    if self.steps < 0 or self.learning_rate <= 0:
      raise ValueError(f"The continuous proposal needs steps >= 0 and learning_rate > 0, got "
                       f"{self.steps} and {self.learning_rate}.")


class Context(NamedTuple):
  """What a proposal may use."""
  space: TaskBox                                   # C: candidates lie in it
  grid: TaskBatch                                  # the G grid tasks (for `grid`)
  num: int                                         # G (static)
  draw: Callable[[jax.Array, int], TaskBatch]      # (key, n) -> n tasks from mu
  alpha: Callable[[jax.Array], jax.Array]          # tasks (n, P) -> AMF's scores (n,)
  ascent: Ascent = Ascent()


def grid(ctx: Context, key: jax.Array) -> TaskBatch:
  del key
  return ctx.grid


def random(ctx: Context, key: jax.Array) -> TaskBatch:
  return ctx.draw(key, ctx.num)


def ascend(ctx: Context, start: jax.Array) -> jax.Array:
  """Projected gradient ascent on `alpha` from one task `start` (P,); returns the last task."""
  space, steps = ctx.space, ctx.ascent.steps
  optimizer = optax.adam(optax.cosine_decay_schedule(ctx.ascent.learning_rate, max(steps, 1)))
  # In the unit cube, one step size suits every parameter (an angle, a distance).
  objective = lambda unit: ctx.alpha(space.from_unit(unit)[None])[0]

  def step(state, _):
    unit, opt_state = state
    updates, opt_state = optimizer.update(-jax.grad(objective)(unit), opt_state)
    unit = space.to_unit(space.project(space.from_unit(optax.apply_updates(unit, updates))))
    return (unit, opt_state), None

  unit = space.to_unit(start)
  (unit, _), _ = jax.lax.scan(step, (unit, optimizer.init(unit)), None, steps)
  return space.project(space.from_unit(unit))


def continuous(ctx: Context, key: jax.Array) -> TaskBatch:
  draws = ctx.draw(key, ctx.num)
  _, best = jax.lax.top_k(ctx.alpha(draws.tasks), ctx.ascent.starts)
  refined = jax.vmap(lambda c: ascend(ctx, c))(draws.tasks[best])
  return TaskBatch(jnp.concatenate([draws.tasks, refined]),
                   jnp.concatenate([draws.ids, jnp.full(refined.shape[:1], -1, jnp.int32)]))


PROPOSALS = {"grid": grid, "random": random, "continuous": continuous}


def get(name: str):
  return registry.lookup(PROPOSALS, name, "candidate proposal")


def parse(spec: str) -> tuple[str, int]:
  """`"grid:8"` -> `("grid", 8)`; `"random"` -> `("random", 0)` (0: the config's
  `num_candidates`, or for `grid` the finite set); an unknown name is refused."""
  name, _, num = spec.partition(":")
  get(name)
  if num and (not num.isdigit() or int(num) < 1):
    raise ValueError(f"Proposal {spec!r}: the number of candidates after ':' must be a "
                     "positive integer.")
  return name, int(num or 0)


def resolve(spec: str, draws: int) -> tuple[str, int]:
  """`(name, candidates)` of proposal `spec`: its own count, else `draws` (a config's
  `num_candidates`), except for `grid`, whose 0 is the finite set."""
  name, num = parse(spec)
  return name, num or (0 if name == "grid" else draws)
