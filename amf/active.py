"""The active fine-tuning loop as pure functions: select -> demonstrate -> fine-tune -> evaluate.

`make_loop(...)` returns a `Loop` of pure functions: `init(key, pretrain_weights) -> Carry`,
`advance(carry, num_rounds) -> Carry` and `select(carry, key) -> TaskBatch` (one selection).
Tasks are parameters `c` throughout: the loop asks for, demonstrates and records them. The
task space (`amf.task_spaces`: `finite` or `continuous`) gives the target tasks, which both
evaluation and AMF's targets use, and mu. Scored strategies choose among the candidates of a
proposal (`amf.proposals`), by AMF's score over the query set `amf.acquisition` builds.
All are shape-static, so a sweep is
`jax.jit(jax.vmap(...))` over seeds, pre-training mixes (a run's `variant`) and arms (the
strategy, estimator and kernel indices in the carry, which `lax.switch` reads), and a long run
advances in chunks with a checkpoint of the carry in between. The learner's state (a GP fit, or a
network's weights and optimiser state) and every round's metrics live in the carry, so a
restored carry has lost nothing.
"""
import dataclasses
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from amf import (acquisition, data as data_lib, gp, keys, nn_kernels, occupancy, proposals,
                 selection, task_spaces)
from amf.envs.base import MultiTaskEnv
from amf.policies import policy_inputs
from amf.proposals import TaskBatch
from amf.rollout import evaluate


class Learner(Protocol):
  """A policy class with its training and its uncertainty model (`GPPolicy`, `NNLearner`).

  Its state is a pytree: `init` trains on the pre-training demonstrations, `update`
  fine-tunes after a round. `covariance` is the GP model of the expert at `query` inputs given
  `data`, with kernel number `kernel` of its `kernels` (names): the posterior covariance
  `(Z, Z)`, the prior variances `(Z,)` and the observation noise std (relative to the prior's
  scale; the learner's constant or fitted to the data), which AMF's scores use too; `model`
  is the same GP factorised once over `data` (`gp.Model`), for the continuous search's many
  query sets.
  """
  kernels: tuple[str, ...]

  def init(self, data: data_lib.Dataset, key: jax.Array) -> Any: ...
  def update(self, state, pretrain: data_lib.Dataset, new: data_lib.Dataset,
             key: jax.Array) -> Any: ...
  def act(self, state, obs, task_features) -> jax.Array: ...
  def log_prob(self, state, obs, task_features, action) -> jax.Array: ...
  def covariance(self, state, data: data_lib.Dataset, query: jax.Array, key: jax.Array,
                 kernel: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]: ...
  def model(self, state, data: data_lib.Dataset, key: jax.Array,
            kernel: jax.Array) -> gp.Model: ...


@dataclasses.dataclass(frozen=True)
class LoopConfig:
  """Static settings of one compiled loop.

  `strategies` and `estimators` are those one program can run; each run picks one of each
  (and one of the learner's kernels) by the indices in its carry (`choose`), through
  `lax.switch`. Vmapped with batched indices every branch would be computed for every run;
  `amf.sweep` advances each group of runs with equal indices with them unbatched, so only the
  chosen branch runs. Scored strategies get a program each, cheap baselines share one
  (`sweep.programs`). `stride` scores every `stride`-th state of a trajectory only, which
  bounds the GP's size on long horizons.
  """
  strategies: tuple[str, ...] = ("amf",)
  estimators: tuple[str, ...] = ("importance",)
  pretrain_size: int = 12
  budget: int = 12
  batch_size: int = 1
  occupancy_samples: int = 4
  eval_episodes: int = 10
  target_tasks: tuple[int, ...] = ()  # the support of mu (uniform on it); () = every task
  target_mass: tuple[float, ...] = ()  # mu's weights on target_tasks; () = uniform
  stride: int = 1
  eval_task_batch: int = 0  # tasks evaluated side by side (`rollout.rollouts`); 0 = all
  eval_episode_batch: int = 0  # if > 0, episodes evaluated side by side instead (per run)
  demo_noise: float = 0.0  # DART: std of the noise on the expert's executed actions
  critic: occupancy.Critic = occupancy.Critic()  # the `learned` estimator's classifier
  task_space: str = "finite"  # or "continuous": targets drawn from mu, tasks off the set
  target_region: tuple = ()  # continuous mu: uniform on ((low, high), ...) of C; () = all of C
  num_targets: int = 16      # continuous: M target tasks drawn from mu per seed
  proposal: str = "grid"     # candidates of scored strategies (`amf.proposals`)
  num_candidates: int = 0    # G: grid size or draws per round; 0 = the finite set's K
  ascent: proposals.Ascent = proposals.Ascent()  # the `continuous` proposal's search

  @property
  def num_rounds(self) -> int:
    return self.budget // self.batch_size

  @classmethod
  def from_config(cls, config, strategies, proposal: str | None = None) -> "LoopConfig":
    """The loop settings of an experiment's config: every field of this class that the config
    has, by name (lists become tuples, the `critic` and `ascent` mappings their types), with
    the program's `strategies` and its candidate proposal `proposal` (`grid`, `grid:G`,
    `random`, `random:N`, ...; default the config's first `proposals`, else `grid`): without
    a count, `grid` is the finite set and the others draw the config's `num_candidates`. A
    new loop setting is then a field here and a config value, nothing else."""
    def static(value, default):
      if isinstance(default, tuple) and hasattr(default, "_fields"):  # Critic, Ascent
        if isinstance(value, type(default)):
          return value
        return type(default)(**{k: static(v, getattr(default, k)) for k, v in value.items()})
      if isinstance(value, (list, tuple)):
        return tuple(static(v, ()) for v in value)
      return value

    spec = proposal or (tuple(config["proposals"]) if "proposals" in config else ("grid",))[0]
    name, num = proposals.resolve(spec, config["num_candidates"] if "num_candidates" in config
                                  else 0)
    given = dict(strategies=tuple(strategies), proposal=name, num_candidates=num)
    for field in dataclasses.fields(cls):
      if field.name not in given and field.name in config:
        given[field.name] = static(config[field.name], field.default)
    return cls(**given)

  def validate(self, env: MultiTaskEnv | None = None) -> None:
    """Refuses impossible settings before anything compiles (with `env`, also those that
    depend on its task space)."""
    if not self.strategies:
      raise ValueError("LoopConfig needs at least one selection strategy.")
    if not self.estimators:
      raise ValueError("LoopConfig needs at least one occupancy estimator.")
    for name in self.strategies:
      selection.get(name)
    for name in self.estimators:
      occupancy.get(name)
    if self.batch_size < 1 or self.budget < self.batch_size:
      raise ValueError(f"Need 1 <= batch_size <= budget, got batch_size={self.batch_size}, "
                       f"budget={self.budget}.")
    if self.budget % self.batch_size:
      raise ValueError(f"budget={self.budget} is not a whole number of rounds of "
                       f"batch_size={self.batch_size}.")
    reusing = set(self.estimators) & set(occupancy.REUSING)
    if self.pretrain_size < 1 and reusing:
      raise ValueError(f"The {sorted(reusing)} estimator(s) re-use past demonstrations: "
                       "pretrain_size must be at least 1.")
    ids = self.target_tasks
    if len(set(ids)) != len(ids) or any(t < 0 for t in ids):
      raise ValueError(f"target_tasks must be distinct task ids, got {self.target_tasks}.")
    if self.target_mass and (len(self.target_mass) != len(ids) or min(self.target_mass) < 0
                             or sum(self.target_mass) <= 0):
      raise ValueError(f"target_mass needs one non-negative weight per target task "
                       f"({len(ids)}), not all zero; got {self.target_mass}.")
    if (len(self.estimators) > 1 and reusing
        and self.occupancy_samples > self.pretrain_size + self.budget):
      raise ValueError(f"occupancy_samples={self.occupancy_samples} exceeds the "
                       f"{self.pretrain_size + self.budget} demonstrations that {sorted(reusing)} "
                       "can re-use, so the estimators' outputs would differ in shape.")
    if min(self.eval_task_batch, self.eval_episode_batch) < 0:
      raise ValueError(f"eval_task_batch and eval_episode_batch must be >= 0 (0: all), got "
                       f"{self.eval_task_batch} and {self.eval_episode_batch}.")
    if self.demo_noise < 0:
      raise ValueError(f"demo_noise must be >= 0, got {self.demo_noise}.")
    if min(self.occupancy_samples, self.eval_episodes, self.stride) < 1:
      raise ValueError("occupancy_samples, eval_episodes and stride must be at least 1.")
    self._validate_tasks(env)

  def _validate_tasks(self, env: MultiTaskEnv | None) -> None:
    task_spaces.get(self.task_space)
    proposals.get(self.proposal)
    if self.num_candidates < 0 or self.num_targets < 1:
      raise ValueError(f"Need num_candidates >= 0 (0: the finite set's size) and num_targets "
                       f">= 1, got {self.num_candidates} and {self.num_targets}.")
    if self.task_space == "continuous":
      finite_only = sorted(set(self.strategies) & set(selection.FINITE_ONLY))
      if finite_only:
        raise ValueError(f"{finite_only} count demonstrations of a finite task set; a "
                         "continuous task space has none (its coverage baseline is "
                         "'coverage').")
      if self.target_tasks:
        raise ValueError("target_tasks picks tasks of a finite set; in a continuous task "
                         "space give target_region instead.")
    elif self.target_region:
      raise ValueError("target_region is for a continuous task space (task_space="
                       "'continuous'); a finite one takes target_tasks.")
    if self.proposal == "continuous" and "uncertainty" in self.strategies:
      raise ValueError("The continuous proposal ascends AMF's score; 'uncertainty' would "
                       "choose among tasks optimised for another objective.")
    if env is not None:
      if self.proposal == "continuous":
        self.ascent.validate(self.num_candidates or env.num_tasks)
      if self.target_region:
        env.task_space.region(self.target_region)


class Loop(NamedTuple):
  init: Callable[[jax.Array, jax.Array], "Carry"]
  advance: Callable[["Carry", jax.Array], "Carry"]
  select: Callable[["Carry", jax.Array], Any]                 # -> TaskBatch
  alpha: Callable[["Carry", jax.Array, jax.Array], jax.Array]  # AMF's scores of tasks (n, P)
  scoring: Callable[["Carry", jax.Array], Any]  # -> selection.Scored: AMF's view of a round
  start: Callable[..., "Carry"]  # (data, learner state, targets, key) -> Carry, no training


class Carry(NamedTuple):
  data: data_lib.Dataset  # pre-training demonstrations, then `budget` slots for new ones
  learner: Any            # the learner's state after the last round
  key: jax.Array
  round: jax.Array        # () rounds done
  returns: jax.Array      # (R + 1, T) per-target-task mean return after each round (0: pre-trained)
  success: jax.Array      # (R + 1, T) per-target-task success rate
  asked: jax.Array        # (R, B) finite-set ids of the tasks asked for (-1: off the set); the
                          # tasks themselves fill the dataset's slots
  strategy: jax.Array     # () index into LoopConfig.strategies
  estimator: jax.Array    # () index into LoopConfig.estimators
  kernel: jax.Array       # () index into the learner's kernels
  diverged: jax.Array     # () first round whose learner or evaluation was not finite; -1: none
  targets: jax.Array      # (T, P) the target tasks: evaluated, and AMF's targets


def finite(*trees) -> jax.Array:
  """Whether every floating-point leaf of `trees` is finite (a () bool)."""
  leaves = [x for x in jax.tree.leaves(trees) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _diverged(carry_diverged: jax.Array, round_: jax.Array, state, ev) -> jax.Array:
  """The first round whose fine-tuned learner or evaluation has a NaN or inf (-1: none yet)."""
  return jnp.where((carry_diverged < 0) & ~finite(state, ev), round_, carry_diverged)


def choose(carry: Carry, strategy: int = 0, estimator: int = 0, kernel: int = 0) -> Carry:
  """The same runs, set to use these indices of strategies, estimators and kernels."""
  return carry._replace(strategy=jnp.full_like(carry.strategy, strategy),
                        estimator=jnp.full_like(carry.estimator, estimator),
                        kernel=jnp.full_like(carry.kernel, kernel))


def round_streams(key: jax.Array) -> dict[str, jax.Array]:
  """A round's keys from the carry's: the next rounds', and this round's consumers'."""
  return keys.streams(key, ("rounds", "selection", "demos", "fit", "evaluation"))


def split(data: data_lib.Dataset, pretrain_size: int):
  """(pre-training demonstrations, the slots for new ones) of a loop's dataset."""
  return (jax.tree.map(lambda x: x[:pretrain_size], data),
          jax.tree.map(lambda x: x[pretrain_size:], data))


class RoundModel(NamedTuple):
  """A round's GP view of the expert, given the demonstrations so far."""
  estimate: Callable[[jax.Array], acquisition.Estimated]  # tasks (n, P) -> their estimated inputs
  covariance: Callable[[jax.Array], tuple]  # inputs Z -> (posterior cov, prior variances, noise)
  factorised: Callable[[], gp.Model]        # the same model, factorised once over the data
  proposal_key: jax.Array                   # the round's proposal's key


class Scorer(NamedTuple):
  """AMF's scores of task sets against a round's targets."""
  score: Callable[[jax.Array], jax.Array]  # tasks (n, P) -> alpha (n,), differentiable in them
  joint: Callable[[jax.Array], tuple]      # tasks -> `acquisition.query_set` over the targets' and
                                           # the tasks' inputs
  proposal_key: jax.Array


def make_loop(env: MultiTaskEnv, learner: Learner, cfg: LoopConfig) -> Loop:
  """Builds the loop. Randomness follows `amf.keys`: each key below has one consumer."""
  cfg.validate(env)
  transductive = sorted(set(learner.kernels) & set(nn_kernels.TRANSDUCTIVE))
  if cfg.proposal == "continuous" and transductive:
    raise ValueError(f"The continuous proposal scores query sets one at a time against one "
                     f"factorisation of the data; kernel(s) {transductive} depend on every "
                     "input of a call. Use a grid or random proposal with them.")
  strategies = [selection.get(name) for name in cfg.strategies]
  estimators = [occupancy.get(name) for name in cfg.estimators]
  propose = proposals.get(cfg.proposal)
  space = task_spaces.get(cfg.task_space)(env, cfg)
  grid = task_spaces.candidates(env, cfg.num_candidates)
  num_tasks, b, stride = env.num_tasks, cfg.batch_size, cfg.stride
  phi = jax.vmap(env.task_features)

  def evaluation(state, key, tasks):
    actor = lambda s: learner.act(state, s.obs, env.task_features(s.info["task"]))
    return evaluate(env, actor, key, tasks, cfg.eval_episodes, cfg.eval_task_batch,
                    cfg.eval_episode_batch)

  def model(c: Carry, key) -> RoundModel:
    """This round's GP view (the occupancy estimators fitted once, for any tasks)."""
    s = keys.streams(key, ("occupancy", "kernel", "proposal"))
    ctx = occupancy.Context(env, c.data, lambda *x: learner.log_prob(c.learner, *x),
                            cfg.occupancy_samples, lambda *x: learner.act(c.learner, *x),
                            cfg.critic)
    fitted = [e(ctx, s["occupancy"]) for e in estimators]

    # With a step mask in the data every estimate carries one (the branches' trees agree).
    recorded = (lambda occ: occ) if c.data.steps is None else data_lib.with_steps

    def estimate(tasks) -> acquisition.Estimated:
      occ = jax.lax.switch(c.estimator, [lambda f=f: recorded(f(tasks)) for f in fitted])
      steps = None if occ.steps is None else occ.steps[:, :, ::stride]
      return acquisition.Estimated(
          policy_inputs(occ.obs[:, :, ::stride], phi(tasks)[:, None, None]), occ.weights, steps)

    strided = data_lib.every(c.data, stride)
    covariance = lambda query: learner.covariance(c.learner, strided, query, s["kernel"],
                                                  c.kernel)
    factorised = lambda: learner.model(c.learner, strided, s["kernel"], c.kernel)
    return RoundModel(estimate, covariance, factorised, s["proposal"])

  def scorer(c: Carry, key, once: bool) -> Scorer:
    """AMF's scores this round; `once`: against one factorisation of the data per round
    (`acquisition.factorised`; the continuous search scores a task set per step)."""
    m = model(c, key)
    est_t = m.estimate(c.targets)
    if once:
      score, joint = acquisition.factorised(m.factorised(), space.mu, est_t)
    else:
      joint = lambda est: acquisition.query_set(m.covariance, space.mu, est_t, est)
      score = lambda est: acquisition.scores(*joint(est))
    return Scorer(lambda tasks: score(m.estimate(tasks)), lambda tasks: joint(m.estimate(tasks)),
                  m.proposal_key)

  def alpha(c: Carry, key: jax.Array, tasks: jax.Array) -> jax.Array:
    """AMF's score `alpha_n(c)` of each task of `tasks` (n, P); differentiable in `tasks`."""
    return scorer(c, key, once=not transductive).score(tasks)

  def scoring(c: Carry, key) -> selection.Scored:
    """Proposes candidates; the posterior covariance over theirs and the targets' inputs."""
    if space.shared:
      m = model(c, key)
      return selection.Scored(*acquisition.query_set(m.covariance, space.mu,
                                                     m.estimate(env.tasks)), grid)
    s = scorer(c, key, once=cfg.proposal == "continuous")
    ctx = proposals.Context(env.task_space, grid, cfg.num_candidates or num_tasks, space.draw,
                            s.score, cfg.ascent)
    batch = propose(ctx, s.proposal_key)
    return selection.Scored(*s.joint(batch.tasks), batch)

  def start(data: data_lib.Dataset, state, targets: jax.Array, key: jax.Array) -> Carry:
    """A carry at round 0 from demonstrations, a learner state and target tasks as they are
    (`amf.suggest`: a lab's own data and policy); its metrics are zeros."""
    r, t = cfg.num_rounds, targets.shape[0]
    return Carry(data, state, key, jnp.int32(0), jnp.zeros((r + 1, t)), jnp.zeros((r + 1, t)),
                 jnp.zeros((r, b), jnp.int32), jnp.int32(0), jnp.int32(0), jnp.int32(0),
                 jnp.int32(-1), targets)

  def init(key: jax.Array, pretrain_weights: jax.Array) -> Carry:
    s = keys.streams(key, ("rounds", "pretrain", "fit", "evaluation", "targets"))
    targets = space.targets(s["targets"])
    pre = data_lib.pretraining(env, s["pretrain"], cfg.pretrain_size, pretrain_weights,
                               cfg.demo_noise)
    data = data_lib.concat(pre, data_lib.empty(env, cfg.budget))
    state = learner.init(data, s["fit"])
    ev = evaluation(state, s["evaluation"], targets)
    c = start(data, state, targets, s["rounds"])
    return c._replace(returns=c.returns.at[0].set(ev.ret), success=c.success.at[0].set(ev.success),
                      diverged=_diverged(c.diverged, jnp.int32(0), state, ev))

  def select(c: Carry, key: jax.Array) -> TaskBatch:
    problem = selection.Problem(
        round=c.round, counts=data_lib.task_counts(c.data, num_tasks), mu=space.mu,
        batch_size=b, scoring=lambda key: scoring(c, key), tasks=env.tasks,
        targets=TaskBatch(c.targets, space.ids), draw=space.draw, features=env.task_features,
        demos=TaskBatch(c.data.task, c.data.task_id), demo_mask=c.data.mask)
    branches = [lambda key, pick=pick: pick(problem, key) for pick in strategies]
    return jax.lax.switch(c.strategy, branches, key)

  def one_round(c: Carry) -> Carry:
    s = round_streams(c.key)
    ask = select(c, s["selection"])
    new = data_lib.demonstrate_tasks(env, s["demos"], ask.tasks, ask.ids, cfg.demo_noise)
    slots = cfg.pretrain_size + c.round * b + jnp.arange(b)
    data = data_lib.write(c.data, slots, new)
    state = learner.update(c.learner, *split(data, cfg.pretrain_size), s["fit"])
    ev = evaluation(state, s["evaluation"], c.targets)
    return c._replace(data=data, learner=state, key=s["rounds"], round=c.round + 1,
                      returns=c.returns.at[c.round + 1].set(ev.ret),
                      success=c.success.at[c.round + 1].set(ev.success),
                      asked=c.asked.at[c.round].set(ask.ids),
                      diverged=_diverged(c.diverged, c.round + 1, state, ev))

  def advance(c: Carry, num_rounds: jax.Array) -> Carry:
    """Runs `num_rounds` more rounds (stops at the budget)."""
    stop = jnp.minimum(c.round + num_rounds, cfg.num_rounds)
    return jax.lax.while_loop(lambda c: c.round < stop, one_round, c)

  return Loop(init, advance, select, alpha, scoring, start)
