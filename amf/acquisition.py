"""AMF's acquisition: expected marginal information gain about the expert on target inputs.

All quantities come from one posterior covariance `cov` over a set of query inputs `Z` that
holds both the target inputs and every candidate's estimated inputs (docs/design.md §2):

  alpha(c) = sum_i w_i(c) sum_t v_t 1/2 log( var_D(z_t) / var_{D u X_i(c)}(z_t) )

where `X_i(c)` (indices into `Z`) are the inputs of the `i`-th estimated trajectory of
candidate `c` with occupancy weight `w_i(c)`, and `v_t` weighs target input `t` (target task
probability x occupancy weight x 1/H). Observations of `X` carry noise variance `noise**2`.
Trajectories may mark steps unrecorded (`steps`, from `amf.data.Dataset.steps`): such a step
is no input of `X_i(c)`, and a target trajectory's `H` is its number of recorded steps.
`query_set` builds `Z` (the targets' estimated inputs first, then the candidates') with its
parts; `factorised` scores candidate sets against one factorisation of the data instead.
"""
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from amf import gp


class Candidates(NamedTuple):
  """Estimated inputs of each candidate task: `index` (C, m, H) into `Z`, `weights` (C, m),
  `steps` (C, m, H): which inputs are observed (None: all)."""
  index: jax.Array
  weights: jax.Array
  steps: Optional[jax.Array] = None


class Targets(NamedTuple):
  """Target inputs: `index` (T,) into `Z`, their weights `weights` (T,) summing to one, and
  `floor` (T,): the posterior variance below which a target counts as known
  (`amf.gp.variance_floor` of its prior variance), so round-off gives no gain."""
  index: jax.Array
  weights: jax.Array
  floor: jax.Array


class Estimated(NamedTuple):
  """Tasks' estimated policy inputs: `inputs` (n, m, H, d), the H scored states of m
  estimated trajectories per task, their occupancy `weights` (n, m), and `steps` (n, m, H):
  which states were recorded (None: all)."""
  inputs: jax.Array
  weights: jax.Array
  steps: Optional[jax.Array] = None

  def flat(self) -> jax.Array:
    return self.inputs.reshape(-1, self.inputs.shape[-1])


def target_set(targets: Estimated, mu: jax.Array, prior_var: jax.Array) -> Targets:
  """The targets' part of a query set `Z` that starts with their inputs: `v_t` = mu of the
  task x occupancy weight x 1/H, and each input's variance floor from `prior_var` (Z,)."""
  n, m, h = targets.inputs.shape[:3]
  if targets.steps is None:
    w = jnp.broadcast_to(mu[:, None, None] * targets.weights[..., None] / h, (n, m, h))
  else:  # 1 / H over each trajectory's recorded steps
    per_step = targets.steps / jnp.maximum(targets.steps.sum(-1, keepdims=True), 1)
    w = mu[:, None, None] * targets.weights[..., None] * per_step
  index = jnp.arange(n * m * h)
  return Targets(index, w.reshape(-1), gp.variance_floor(prior_var[index]))


def _candidate_set(offset: int, candidates: Estimated) -> Candidates:
  """The candidates' part of `Z`: their inputs from `offset` on."""
  shape = candidates.inputs.shape[:3]
  return Candidates(offset + jnp.arange(shape[0] * shape[1] * shape[2]).reshape(shape),
                    candidates.weights, candidates.steps)


def query_set(covariance, mu: jax.Array, targets: Estimated,
              candidates: Estimated | None = None):
  """AMF's view of a round: `(cov, noise, Targets, Candidates)` over `Z`, the targets'
  estimated inputs first and then the candidates' (`None`: the candidates are the targets,
  one copy of their inputs serves both). `covariance(Z)` is the learner's `(posterior
  covariance, prior variances, noise std)`; `scores(*query_set(...))` is alpha."""
  query_t = targets.flat()
  if candidates is None:
    cov, prior_var, noise = covariance(query_t)
    return cov, noise, target_set(targets, mu, prior_var), _candidate_set(0, targets)
  cov, prior_var, noise = covariance(jnp.concatenate([query_t, candidates.flat()]))
  return (cov, noise, target_set(targets, mu, prior_var),
          _candidate_set(query_t.shape[0], candidates))


def factorised(model: gp.Model, mu: jax.Array, targets: Estimated):
  """`(score, joint)` of candidate sets against one factorisation of the demonstrations
  (`gp.Model`), with the targets' part made once: each candidate set then pays only for its
  own inputs (the continuous search scores one per ascent step). `score(candidates)` is
  alpha (C,), `joint(candidates)` the `query_set`; the same numbers as `query_set`."""
  query_t = targets.flat()
  half_t = model.whiten(query_t)
  prior_t = model.prior_variance(query_t)
  target = target_set(targets, mu, prior_t)
  var_t = prior_t - jnp.sum(half_t ** 2, 0)

  def score(candidates: Estimated) -> jax.Array:
    query = candidates.flat()
    half = model.whiten(query)
    sets, h = candidates.weights.size, candidates.inputs.shape[2]
    cross = model.cross(query_t, half_t, query, half).reshape(-1, sets, h)
    block = jax.vmap(model.own, in_axes=(0, 1))(query.reshape(sets, h, -1),
                                                half.reshape(-1, sets, h))
    g = gains(var_t, cross, block, model.noise, target, _per_set(candidates.steps))
    return jnp.sum(candidates.weights * g.reshape(candidates.weights.shape), axis=-1)

  def joint(candidates: Estimated):
    query = candidates.flat()
    half = model.whiten(query)
    cross = model.cross(query_t, half_t, query, half)
    cov = jnp.block([[model.own(query_t, half_t), cross], [cross.T, model.own(query, half)]])
    return cov, model.noise, target, _candidate_set(query_t.shape[0], candidates)

  return score, joint


def _per_set(steps: Optional[jax.Array]) -> Optional[jax.Array]:
  """Step masks (..., H) as one row per input set (J, H)."""
  return None if steps is None else steps.reshape(-1, steps.shape[-1])


def _whiten(cov: jax.Array, noise: float, observed: jax.Array, columns,
            steps: Optional[jax.Array] = None) -> jax.Array:
  """`L^-1 cov[observed, columns]` with `L L^T = cov[observed, observed] + noise^2 I`; rows
  of unobserved inputs (`steps` False) are zero (their block of `L` is the identity)."""
  s_xx = cov[observed][:, observed] + noise ** 2 * jnp.eye(observed.shape[0])
  b = cov[observed][:, columns]
  if steps is not None:
    s_xx = jnp.where(steps[:, None] & steps[None, :], s_xx, jnp.eye(observed.shape[0]))
    b = jnp.where(steps[:, None], b, 0.0)
  chol = jnp.linalg.cholesky(s_xx)
  return jax.scipy.linalg.solve_triangular(chol, b, lower=True)


def _reduction(cross: jax.Array, block: jax.Array, noise: float,
               steps: Optional[jax.Array] = None) -> jax.Array:
  """`var_D(z) - var_{D u X_j}(z)`, (Z, J), from `cross` = Cov(z, x_jh) (Z, J, H) and `block`
  = Cov(x_jh, x_jh') (J, H, H).

  Conditioning on the noisy observations one at a time (rank-one updates) is exact and
  vectorises over all `J` sets at once, where a factorisation per set would be `J` small
  LAPACK calls. Each row `z` is updated on its own, so only the rows asked about are computed.
  `steps` (J, H): which inputs of each set are observed (None: all); the others change nothing.
  """
  def observe(t, state):
    cross, block, reduction = state
    pivot = block[:, t, t] + noise ** 2  # (J,): variance of the t-th noisy observation
    col, row = cross[:, :, t], block[:, t, :]
    if steps is not None:
      col, row = jnp.where(steps[:, t], col, 0.0), jnp.where(steps[:, t, None], row, 0.0)
      pivot = jnp.where(steps[:, t], pivot, 1.0)
    cross = cross - col[:, :, None] * (row / pivot[:, None])[None]
    block = block - block[:, :, t, None] * (row / pivot[:, None])[:, None, :]
    return cross, block, reduction + col ** 2 / pivot

  zeros = jnp.zeros(cross.shape[:2])
  return jax.lax.fori_loop(0, cross.shape[2], observe, (cross, block, zeros))[2]


def _blocks(cov: jax.Array, observed: jax.Array) -> jax.Array:
  """`Cov(x_jh, x_jh')` (J, H, H) of each input set `observed[j]`."""
  return cov[observed[:, :, None], observed[:, None, :]]


def variance_reduction(cov: jax.Array, noise: float, observed: jax.Array,
                       steps: Optional[jax.Array] = None) -> jax.Array:
  """`var_D(z) - var_{D u X_j}(z)` for every query `z` and every input set `X_j`.

  `observed` (J, H) holds the `H` indices of each `X_j`, `steps` (J, H) which of them are
  observed (None: all); the result is (Z, J).
  """
  return _reduction(cov[:, observed], _blocks(cov, observed), noise, steps)


def gains(var: jax.Array, cross: jax.Array, block: jax.Array, noise: float,
          targets: Targets, steps: Optional[jax.Array] = None) -> jax.Array:
  """Weighted marginal information gain on the targets of each input set `X_j`, (J,), from the
  targets' posterior variances `var` (T,), `cross` = Cov(target, x_jh) (T, J, H) and `block`
  = Cov(x_jh, x_jh') (J, H, H): all a score needs, so a query set's full covariance with
  the targets' never has to be formed. `steps` (J, H): which inputs are observed (None: all)."""
  var = jnp.maximum(var, targets.floor)[:, None]
  post = jnp.maximum(var - _reduction(cross, block, noise, steps), targets.floor[:, None])
  return targets.weights @ (0.5 * jnp.log(var / post))


def information_gain(cov: jax.Array, noise: float, targets: Targets,
                     observed: jax.Array, steps: Optional[jax.Array] = None) -> jax.Array:
  """Weighted marginal information gain on the targets of each input set, shape (J,)."""
  return gains(jnp.diag(cov)[targets.index], cov[targets.index][:, observed],
               _blocks(cov, observed), noise, targets, steps)


def scores(cov: jax.Array, noise: float, targets: Targets, candidates: Candidates) -> jax.Array:
  """`alpha(c)` for every candidate, shape (C,)."""
  c, m, h = candidates.index.shape
  gains = information_gain(cov, noise, targets, candidates.index.reshape(c * m, h),
                           _per_set(candidates.steps))
  return jnp.sum(candidates.weights * gains.reshape(c, m), axis=-1)


def condition(cov: jax.Array, noise: float, observed: jax.Array,
              steps: Optional[jax.Array] = None) -> jax.Array:
  """The covariance over `Z` after noisy observations at `observed` (inputs only; `steps`:
  which of them are observed, None: all)."""
  half = _whiten(cov, noise, observed, slice(None), steps)
  return cov - half.T @ half


def own_variance(cov: jax.Array, candidates: Candidates) -> jax.Array:
  """Undirected score: posterior variance on each candidate's own estimated inputs, (C,)."""
  var = jnp.diag(cov)[candidates.index]  # (C, m, H)
  if candidates.steps is None:
    mean = var.mean(-1)
  else:  # over the observed inputs
    steps = candidates.steps
    mean = jnp.where(steps, var, 0.0).sum(-1) / jnp.maximum(steps.sum(-1), 1)
  return jnp.sum(candidates.weights * mean, axis=-1)


def greedy(cov: jax.Array, noise: float, candidates: Candidates, batch_size: int,
           score) -> tuple[jax.Array, jax.Array]:
  """Picks `batch_size` candidates by `score(cov) -> (C,)`, greedily; repeats allowed.

  After each pick the model is conditioned on the inputs of that candidate's most likely
  estimated trajectory (variances only), and the rest are re-scored. Returns the picks (B,)
  and the covariance conditioned on all of them (what the batch is expected to leave).
  """
  def pick(cov, _):
    best = jnp.argmax(score(cov))
    i = jnp.argmax(candidates.weights[best])
    steps = None if candidates.steps is None else candidates.steps[best, i]
    return condition(cov, noise, candidates.index[best, i], steps), best

  after, chosen = jax.lax.scan(pick, cov, None, batch_size)
  return chosen, after


def greedy_batch(cov: jax.Array, noise: float, targets: Targets, candidates: Candidates,
                 batch_size: int) -> tuple[jax.Array, jax.Array]:
  """AMF's batch (docs/design.md §2): greedy in the expected information gain on the targets; the
  picks and the covariance after them (`greedy`)."""
  return greedy(cov, noise, candidates, batch_size,
                lambda cov: scores(cov, noise, targets, candidates))
