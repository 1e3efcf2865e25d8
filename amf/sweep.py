"""Runs one compiled active loop over a batch of runs, checkpointed.

A run is one seed under one `variant`, the run's pre-training mix (or the integrator's `k`);
all runs of a method share one `jit(vmap(...))`
program, and with several devices the runs axis is sharded over them. The carry is saved with
orbax every `checkpoint_every` rounds, and a restarted sweep resumes from the newest
checkpoint, so a killed run loses no finished round. Every checkpoint is kept (`amf.export`
reads any round of a run).
"""
import dataclasses
import itertools
import os
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from amf import arms, checkpoint, proposals, selection
from amf.active import Carry, LoopConfig, choose, make_loop
from amf.gp_policy import GPPolicy


class Runs(NamedTuple):
  """The batch of runs every method goes through: run `j` is `(keys[j], weights[j])`."""
  keys: jax.Array      # (n, 2) PRNG keys
  weights: jax.Array   # (n, K) pre-training task mix
  variants: list       # (n,) labels of the `variant` column
  seeds: np.ndarray    # (n,) seed numbers


def seed_keys(base_seed: int, seeds: Sequence[int]) -> jax.Array:
  """Seed `s` gets `fold_in(key(base_seed), s)`, whatever else runs beside it."""
  return jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(base_seed), s))(
      jnp.asarray(seeds))


def shard(tree):
  """Places a batch of runs (leading axis) across all devices, when it divides evenly.

  `jit` then runs every device's share of the runs where it lies; one device: unchanged.
  """
  devices = jax.devices()
  n = jax.tree.leaves(tree)[0].shape[0]
  if len(devices) == 1:
    return tree
  if n % len(devices):
    logging.warning("%d runs do not divide over %d devices: running on one.", n, len(devices))
    return tree
  mesh = jax.sharding.Mesh(np.asarray(devices), ("runs",))
  return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("runs")))


class DivergedError(ValueError):
  """Some runs' learner or evaluation produced NaN or inf."""


def check_finite(carry: Carry, labels: Sequence[str]) -> None:
  """Raises a `DivergedError` naming each run (`labels[j]`) that diverged, and the round."""
  diverged = np.asarray(carry.diverged)
  bad = np.flatnonzero(diverged >= 0)
  if bad.size:
    runs = "; ".join(f"{labels[j]}: round {diverged[j]}" for j in bad[:10])
    raise DivergedError(f"{bad.size} run(s) produced NaN or inf in their learner or evaluation "
                        f"({runs}{'; ...' if bad.size > 10 else ''}). Their rows are not "
                        "written; check the learning rate, the kernel or the data.")


# The carry's indices of a run's strategy, estimator and kernel (`amf.active.choose`).
ARM_FIELDS = ("strategy", "estimator", "kernel")


class Program(NamedTuple):
  """One compiled program of a sweep: its strategies, candidate proposal and label suffix."""
  strategies: tuple[str, ...]
  proposal: str
  suffix: str


def programs(methods: Sequence[str], proposals: Sequence[str]) -> list[Program]:
  """Which strategies share a compiled program: each scored strategy (`selection.SCORED`) has
  one per candidate proposal (their shapes differ), the cheap ones share one. Within a
  program, runs with equal arm indices are then advanced together (`arm_groups`)."""
  scored = [n for n in methods if n in selection.SCORED]
  cheap = tuple(n for n in methods if n not in selection.SCORED)
  out = [Program((name,), spec, "/" + spec.replace(":", "") if len(proposals) > 1 else "")
         for name in scored for spec in proposals]
  return out + ([Program(cheap, proposals[0], "")] if cheap else [])


def arms_of(group: Sequence[str], estimators: Sequence[str], kernels: Sequence[str]):
  """`(method label, strategy, estimator, kernel)` of every arm a program runs.

  AMF and `uncertainty` run once per (kernel, estimator) pair, labelled e.g.
  `amf/last_layer/learned` with only the axes that vary; cheap baselines run once.
  """
  if group[0] not in selection.SCORED:
    return [(name, i, 0, 0) for i, name in enumerate(group)]
  out = []
  for (j, kernel), (i, estimator) in itertools.product(enumerate(kernels), enumerate(estimators)):
    parts = ([kernel] if len(kernels) > 1 else []) + ([estimator] if len(estimators) > 1 else [])
    out.append(("/".join([group[0], *parts]), 0, i, j))
  return out


def arm_groups(carry: Carry) -> list[tuple[tuple[int, ...], np.ndarray]]:
  """`(indices, runs)`: the runs of the batch that share their strategy, estimator and kernel
  indices (`ARM_FIELDS`), in order of first appearance."""
  ids = np.stack([np.asarray(getattr(carry, f)) for f in ARM_FIELDS], -1)
  _, first, inverse = np.unique(ids, axis=0, return_index=True, return_inverse=True)
  return [(tuple(int(i) for i in ids[f]), np.flatnonzero(inverse.ravel() == g))
          for g, f in sorted(enumerate(first), key=lambda gf: gf[1])]


def chunks(runs: np.ndarray, max_runs: int) -> list[np.ndarray]:
  """`runs` in the fewest near-equal chunks of at most `max_runs` (0: one chunk)."""
  count = -(-len(runs) // max_runs) if max_runs > 0 else 1
  return np.array_split(runs, count)


def batched_advance(advance: Callable, max_runs: int = 0) -> Callable:
  """`advance_all(carry, num_rounds)` over a batch of runs: one call per arm group.

  Within a group the arm indices are passed unbatched, so the loop's `lax.switch` over
  strategies, estimators and kernels runs only the chosen branch. (With a batched index, vmap
  turns the switch into a select that computes every branch for every run.) A group of more
  than `max_runs` runs (if > 0) is advanced in chunks, one after another, so memory is bounded
  by `max_runs` runs (e.g. the empirical NTK on pusher). Calls of equal size share one
  compiled program; with several devices each call's runs are sharded over them.
  """
  axes = Carry(*[None if f in ARM_FIELDS else 0 for f in Carry._fields])
  one = jax.jit(jax.vmap(advance, in_axes=(axes, None)))

  def advance_all(carry: Carry, num_rounds: int) -> Carry:
    parts, order = [], []
    for indices, group in arm_groups(carry):
      for runs in chunks(group, max_runs):
        part = shard(jax.tree.map(lambda x: x[runs], carry))._replace(
            **{f: jnp.int32(i) for f, i in zip(ARM_FIELDS, indices)})
        parts.append(one(part, num_rounds))
        order.append(runs)
    if len(parts) == 1:
      return parts[0]
    back = np.argsort(np.concatenate(order))
    return shard(jax.tree.map(lambda *x: jnp.concatenate(x)[back], *parts))

  return advance_all


def run(name: str, advance: Callable, initial: Carry, num_rounds: int, checkpoint_dir: str,
        checkpoint_every: int, labels: Sequence[str], max_runs: int = 0) -> Carry:
  """Advances the batched `initial` carry to `num_rounds` rounds, resuming if it can.

  At most `max_runs` runs (0: all) are advanced at once (`batched_advance`). Stops with a
  `DivergedError` naming the runs (`labels`, one per run) as soon as one has diverged, so no
  NaN reaches a table or a figure.
  """
  advance_all = batched_advance(advance, max_runs)
  # Every chunk's checkpoint is kept: `amf.export` restores any round from the one before it.
  progress = checkpoint.Progress(checkpoint_dir, max_to_keep=None)
  done, carry = progress.latest(initial)
  if carry is None:
    done, carry = 0, initial
  else:
    logging.info("%s: resuming from the checkpoint after round %d", name, done)
  while done < num_rounds:
    start = time.time()
    carry = jax.block_until_ready(advance_all(carry, min(checkpoint_every, num_rounds - done)))
    done = int(carry.round[0])
    check_finite(carry, labels)
    progress.save(done, carry)
    logging.info("%s: round %d/%d (%.1fs%s)", name, done, num_rounds, time.time() - start,
                 ", compile included" if done <= checkpoint_every else "")
  progress.close()
  return carry


def rows(carry: Carry, env: str, method: str, variants: Sequence[str], seeds: Sequence[int],
         target: np.ndarray) -> tuple[list[dict], list[dict], list[dict]]:
  """Tidy rows of a finished batch of runs: (metrics, per_task, allocations).

  Run `j` of the batch is variant `variants[j]`, seed `seeds[j]`; metrics average the target
  tasks with their weights `target`. An allocation row gives the finite-set id of the task
  asked for (`task`, -1 off the set) and its parameters `c0`, `c1`, ...
  """
  returns, success, asked = (np.asarray(x) for x in (carry.returns, carry.success, carry.asked))
  batch = asked.shape[-1]
  # The asked tasks fill the dataset's last R * B slots, in order.
  params = np.asarray(carry.data.task)[:, -asked.shape[1] * batch:].reshape(
      asked.shape + carry.data.task.shape[-1:])
  metrics, per_task, allocations = [], [], []
  for j, (variant, seed) in enumerate(zip(variants, seeds)):
    run_id = dict(env=env, method=method, variant=variant, seed=int(seed))
    for r in range(returns.shape[1]):
      metrics.append(dict(run_id, round=r, num_demos=r * batch,
                          **{"return": float(returns[j, r] @ target),
                             "success": float(success[j, r] @ target)}))
      per_task += [dict(run_id, round=r, task=t, **{"return": float(returns[j, r, t]),
                                                     "success": float(success[j, r, t])})
                   for t in range(returns.shape[2])]
    allocations += [dict(run_id, round=r + 1, task=int(asked[j, r, i]),
                         **{f"c{d}": float(x) for d, x in enumerate(params[j, r, i])})
                    for r in range(asked.shape[1]) for i in range(batch)]
  return metrics, per_task, allocations


def pretrained(init: Callable, runs: Runs, workdir: str) -> Carry:
  """Every run's initial carry (pre-trained learner, round-0 evaluation), made once.

  Saved with orbax under `workdir/checkpoints/pretrained`; every method starts from it, and a
  rerun restores it instead of pre-training again.
  """
  path = os.path.join(workdir, "checkpoints", "pretrained")
  batched = jax.jit(jax.vmap(init))
  if os.path.exists(path):
    logging.info("Restoring the pre-trained runs from %s", path)
    return checkpoint.restore(path, jax.eval_shape(batched, runs.keys, runs.weights))
  start = time.time()
  initial = jax.block_until_ready(batched(runs.keys, runs.weights))
  check_finite(initial, [f"pre-training, {v}, seed {s}"
                         for v, s in zip(runs.variants, runs.seeds)])
  logging.info("%d runs pre-trained and evaluated in %.1fs (compile included)", len(runs.keys),
               time.time() - start)
  checkpoint.save(path, initial)
  return initial


@dataclasses.dataclass(frozen=True)
class Spec:
  """What a sweep runs, as typed values: an experiment builds it from its config once
  (`from_config`), and the library reads nothing else of the config.

  `settings` are the config values an arm's result depends on besides its own
  (`amf.arms.settings`): with an arm's strategy, estimator, kernel and proposal, its identity.
  """
  env: str                         # the `env` column
  methods: tuple[str, ...]
  proposals: tuple[str, ...]
  estimators: tuple[str, ...]
  kernels: tuple[str, ...]         # the learner's kernels
  loop: LoopConfig                 # of the whole sweep (`program` sets a program's own)
  draws: int                       # candidates of a proposal without its own count
  checkpoint_every: int
  max_runs_per_call: int
  settings: dict

  @classmethod
  def from_config(cls, config) -> "Spec":
    """An experiment's config: the loop's fields by name (`LoopConfig.from_config`), and
    `env`, `methods`, `proposals`, `estimators`, `kernels` (an NN learner's; the GP learner
    has its own), `checkpoint_every`, `max_runs_per_call`."""
    kernels = tuple(config.kernels) if "kernels" in config else GPPolicy.kernels
    return cls(config.env, tuple(config.methods), tuple(config.proposals),
               tuple(config.estimators), kernels,
               LoopConfig.from_config(config, config.methods),
               config.num_candidates if "num_candidates" in config else 0,
               config.checkpoint_every, config.max_runs_per_call,
               arms.settings(config.to_dict()))

  def program(self, program: "Program") -> LoopConfig:
    """The loop settings of one program: its strategies and candidate proposal."""
    name, num = proposals.resolve(program.proposal, self.draws)
    return dataclasses.replace(self.loop, strategies=tuple(program.strategies), proposal=name,
                               num_candidates=num)


def program_arms(spec: Spec):
  """Per `programs` entry of `spec`: `(program, arms, ids)`, its arms
  `(label, strategy, estimator, kernel)` and each label's `(key, identity)` (`amf.arms`)."""
  out = []
  for program in programs(spec.methods, spec.proposals):
    group = program.strategies
    members = [(label + program.suffix, *rest) for label, *rest in
               arms_of(group, spec.estimators, spec.kernels)]
    ids = {label: arms.key(spec.settings, group[s], spec.estimators[e], spec.kernels[j],
                           program.proposal)
           for label, s, e, j in members}
    out.append((program, members, ids))
  return out


def name_of(program: Program) -> str:
  """A program's name in logs, e.g. `uniform+rebalancing` or `amf/grid4`."""
  return "+".join(program.strategies) + program.suffix


def checkpoint_tag(program: Program, members: Sequence, chosen: Sequence) -> str:
  """The folder under `checkpoints/` of the sweep over the arms `chosen` of a program's
  `members` (`(label, ...)`): the program's name with "/" as "_", followed by the chosen
  arms' labels when they are a subset (the rest read from a store)."""
  tag = name_of(program).replace("/", "_")
  if len(chosen) == len(members):
    return tag
  return "-".join([tag] + [label.replace("/", "_") for label, *_ in chosen])


def arm_batch(initial: Carry, members: Sequence) -> Carry:
  """The runs of the arms `members` (`(label, strategy, estimator, kernel)`), arm-major:
  each arm's copy of the pre-trained runs `initial`."""
  return jax.tree.map(lambda *x: jnp.concatenate(x),
                      *[choose(initial, s, e, j) for _, s, e, j in members])


def lookup(spec: Spec, store: Optional[arms.Store] = None) -> list:
  """Per `program_arms` entry of `spec`: `(program, members, ids, found)`, with `found[label]`
  the tables of an arm that a finished process of the plan computed (`store.find`), or None
  where it is still to compute (always without a `store`)."""
  return [(program, members, ids,
           {label: store.find(ids[label][0], label) if store is not None else None
            for label, *_ in members})
          for program, members, ids in program_arms(spec)]


def compute(spec: Spec, env, learner, runs: Runs, workdir: str, target: np.ndarray,
            initial: Carry, program: Program, chosen: Sequence, tag: str) -> dict:
  """`{label: tables}` of the arms `chosen` of `program` (`(label, strategy, estimator,
  kernel)`), computed from the pre-trained runs `initial` as one checkpointed sweep (`run`)
  under `workdir/checkpoints/tag`: the runs of all the arms are batched together."""
  n = len(runs.keys)
  batch = arm_batch(initial, chosen)
  loop = make_loop(env, learner, spec.program(program))
  labels = [f"{label}, {v}, seed {s}" for label, *_ in chosen
            for v, s in zip(runs.variants, runs.seeds)]
  carry = run(tag, loop.advance, batch, spec.loop.num_rounds,
              os.path.join(workdir, "checkpoints", tag), spec.checkpoint_every, labels,
              spec.max_runs_per_call)
  return {label: dict(zip(arms.TABLES, rows(jax.tree.map(lambda x: x[i * n:(i + 1) * n], carry),
                                            spec.env, label, runs.variants, runs.seeds,
                                            target)))
          for i, (label, *_) in enumerate(chosen)}


def methods(spec: Spec, env, learner, runs: Runs, workdir: str, target: np.ndarray,
            check: Optional[Callable[[Carry], None]] = None,
            store: Optional[arms.Store] = None) -> dict:
  """Every arm of `spec.methods` on every run: tables `{name: rows}` of
  `metrics`, `per_task` and `allocations`.

  Looks the arms up in `store` (`lookup`; an `amf.arms.Store`, recording the arms computed
  here), pre-trains once (`pretrained`) if any is left to compute, then computes each
  program's remaining arms (`compute`). `check(initial)` may refuse the pre-trained runs
  (e.g. a kernel with NaNs) before the sweep.
  """
  if tuple(learner.kernels) != spec.kernels:
    raise ValueError(f"the learner scores with kernels {learner.kernels}, the sweep names "
                     f"{spec.kernels}")
  planned = lookup(spec, store)
  initial = None
  if any(v is None for *_, found in planned for v in found.values()):
    initial = pretrained(make_loop(env, learner, spec.loop).init, runs, workdir)
    if check is not None:
      check(initial)
  tables = {name: [] for name in arms.TABLES}
  for program, members, ids, found in planned:
    start, name = time.time(), name_of(program)
    chosen = [v for v in members if found[v[0]] is None]
    computed = {}
    if chosen:
      computed = compute(spec, env, learner, runs, workdir, target, initial, program, chosen,
                         checkpoint_tag(program, members, chosen))
      if store is not None:
        for label in computed:
          store.record(*ids[label], label)
    for label, *_ in members:
      for table, new in (found[label] or computed[label]).items():
        tables[table].extend(new)
    logging.info("%s: %d runs in %.1fs%s", name, len(chosen) * len(runs.keys),
                 time.time() - start,
                 f"; {len(members) - len(chosen)} arm(s) read from {store}"
                 if len(chosen) < len(members) else "")
  return tables
