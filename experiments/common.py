"""What every active-loop experiment does around its loop: outputs, shared pre-training, sweeps.

An experiment builds an environment, a learner and a batch of runs (one per seed x value
variant); `sweep_methods` then pre-trains once for every method (checkpointed with orbax, so a
rerun or another method re-uses it), compiles one program per group of methods and writes
`metrics.csv`, `per_task.csv`, `allocations.csv` and `summary.csv`.
"""
import itertools
import json
import os
import shutil
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

from amf import checkpoint, cli, metrics, plotting, proposals, selection, sweep
from amf.active import Carry, LoopConfig, choose, make_loop, target_weights

METRIC_COLUMNS = ("env", "method", "variant", "seed", "round", "num_demos", "return", "success")
PER_TASK_COLUMNS = ("env", "method", "variant", "seed", "round", "task", "return", "success")
ALLOCATION_COLUMNS = ("env", "method", "variant", "seed", "round", "task")


class Runs(NamedTuple):
  """The batch of runs every method goes through: run `j` is `(keys[j], weights[j])`."""
  keys: jax.Array      # (n, 2) PRNG keys
  weights: jax.Array   # (n, K) pre-training task mix
  variants: list       # (n,) labels of the `variant` column
  seeds: np.ndarray    # (n,) seed numbers


def parse_proposal(spec: str) -> tuple[str, int]:
  """`"grid:8"` -> `("grid", 8)`; `"random"` -> `("random", 0)` (0: the config's
  `num_candidates`, or for `grid` the finite set)."""
  name, _, num = spec.partition(":")
  proposals.get(name)
  if num and (not num.isdigit() or int(num) < 1):
    raise ValueError(f"Proposal {spec!r}: the number of candidates after ':' must be a "
                     "positive integer.")
  return name, int(num or 0)


def loop_config(config: ml_collections.ConfigDict, methods: Sequence[str],
                proposal: str | None = None) -> LoopConfig:
  """The static loop settings of a loop experiment's config, for the strategies `methods` and
  the candidate proposal `proposal` (default: the config's first)."""
  name, num = parse_proposal(proposal or config.proposals[0])
  if not num and name != "grid":
    num = config.num_candidates
  return LoopConfig.from_config(config, methods, name, num)


def validate_loop(config: ml_collections.ConfigDict, env) -> np.ndarray:
  """Refuses the loop settings every loop experiment shares; returns the target mu (T,)."""
  if not config.proposals:
    raise ValueError("proposals must name at least one candidate proposal.")
  for spec in config.proposals:
    loop_config(config, config.methods, spec).validate(env)
  if config.task_space == "continuous":
    target = np.full(config.num_targets, 1.0 / config.num_targets)
  else:
    target = np.asarray(target_weights(env.num_tasks, tuple(config.target_tasks)))
  if min(config.noise, config.action_std) <= 0:
    raise ValueError("noise and action_std must be positive.")
  if min(config.num_seeds, config.checkpoint_every) < 1:
    raise ValueError("num_seeds and checkpoint_every must be at least 1.")
  if config.max_runs_per_call < 0:
    raise ValueError(f"max_runs_per_call must be >= 0 (0: all runs at once), got "
                     f"{config.max_runs_per_call}.")
  return target


def validate_learner(config: ml_collections.ConfigDict) -> None:
  """Refuses bad settings of the BC learner every NN experiment shares (`configs/testbed.py`)."""
  if min(config.action_std, config.learning_rate) <= 0 or config.demo_noise < 0:
    raise ValueError("action_std and learning_rate must be positive, demo_noise >= 0.")
  if min(config.bc_batch_size, config.pretrain_steps) < 1:
    raise ValueError("bc_batch_size and pretrain_steps must be at least 1.")


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    overwrite: bool = False) -> None:
  """Makes `workdir` ready for `config`'s outputs and writes `config.json`; call it before
  anything compiles.

  A workdir holding the outputs of the same config is resumed. One that holds another
  config's (its `config.json` differs) is refused, naming the settings that differ, unless
  `overwrite`, which deletes it first; one that cannot be written is refused.
  """
  path = os.path.join(workdir, "config.json")
  text = config.to_json(indent=2)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    new = json.loads(text)
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if differ and not overwrite:
      raise ValueError(f"{workdir} holds the outputs of another config (it differs in "
                       f"{differ}); choose another --workdir, or pass --overwrite to delete "
                       "them and start afresh.")
    if differ:
      logging.warning("--overwrite: deleting %s (another config's outputs)", workdir)
      shutil.rmtree(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
      f.write(text)
  except OSError as e:
    raise ValueError(f"The workdir {workdir} cannot be written: {e}") from e


def pretrained(init: Callable, runs: Runs, workdir: str) -> Carry:
  """Every run's initial carry (pre-trained learner, round-0 evaluation), made once.

  Saved with orbax under `checkpoints/pretrained`; every method starts from it, and a rerun
  restores it instead of pre-training again.
  """
  path = os.path.join(workdir, "checkpoints", "pretrained")
  batched = jax.jit(jax.vmap(init))
  if os.path.exists(path):
    logging.info("Restoring the pre-trained runs from %s", path)
    return checkpoint.restore(path, jax.eval_shape(batched, runs.keys, runs.weights))
  start = time.time()
  initial = jax.block_until_ready(batched(runs.keys, runs.weights))
  sweep.check_finite(initial, [f"pre-training, {v}, seed {s}"
                               for v, s in zip(runs.variants, runs.seeds)])
  logging.info("%d runs pre-trained and evaluated in %.1fs (compile included)", len(runs.keys),
               time.time() - start)
  checkpoint.save(path, initial)
  return initial


def variants_of(group: Sequence[str], estimators: Sequence[str], kernels: Sequence[str]):
  """`(method label, strategy, estimator, kernel)` of every method variant a group runs.

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


def programs(config: ml_collections.ConfigDict) -> list[tuple[tuple[str, ...], str, str]]:
  """`(strategies, proposal, label suffix)` of every compiled program of a sweep: each scored
  strategy once per candidate proposal (shapes differ), the cheap ones together."""
  out = []
  for group in selection.programs(config.methods):
    if group[0] not in selection.SCORED:
      out.append((group, config.proposals[0], ""))
      continue
    for spec in config.proposals:
      suffix = "/" + spec.replace(":", "") if len(config.proposals) > 1 else ""
      out.append((group, spec, suffix))
  return out


def sweep_methods(config: ml_collections.ConfigDict, env, learner, runs: Runs, workdir: str,
                  target: np.ndarray, check: Optional[Callable[[Carry], None]] = None) -> dict:
  """Runs every method variant of `config.methods` on every run; writes and returns the tables
  (name -> rows).

  `check(initial)` may refuse the pre-trained runs (e.g. a kernel with NaNs) before the sweep.
  """
  methods = config.methods
  cfg = loop_config(config, methods)
  initial = pretrained(make_loop(env, learner, cfg).init, runs, workdir)
  if check is not None:
    check(initial)
  n = len(runs.keys)
  tables = {"metrics": [], "per_task": [], "allocations": []}
  for group, proposal, suffix in programs(config):
    start, name = time.time(), "+".join(group) + suffix
    chosen = [(label + suffix, *rest) for label, *rest in
              variants_of(group, cfg.estimators, learner.kernels)]
    # One program per group: the runs of all its method variants are batched together.
    batch = jax.tree.map(lambda *x: jnp.concatenate(x),
                         *[choose(initial, s, e, k) for _, s, e, k in chosen])
    loop = make_loop(env, learner, loop_config(config, group, proposal))
    labels = [f"{label}, {v}, seed {s}" for label, *_ in chosen
              for v, s in zip(runs.variants, runs.seeds)]
    carry = sweep.run(name.replace("/", "_"), loop.advance, batch, cfg.num_rounds,
                      os.path.join(workdir, "checkpoints", name.replace("/", "_")),
                      config.checkpoint_every, labels, config.max_runs_per_call)
    for i, (label, *_) in enumerate(chosen):
      part = jax.tree.map(lambda x: x[i * n:(i + 1) * n], carry)
      for table, new in zip(tables.values(),
                            sweep.rows(part, config.env, label, runs.variants, runs.seeds,
                                       target)):
        table.extend(new)
    logging.info("%s: %d runs in %.1fs", name, len(chosen) * n, time.time() - start)
  write_tables(workdir, tables)
  return tables


def best_time(repeats: int, fn, *args) -> float:
  """Best wall time of `fn(*args)` (already compiled) over `repeats` calls, for benchmarks."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def comparisons(methods: Sequence[str]) -> list[tuple[str, str]]:
  """The seed-paired comparisons a sweep reports: every AMF variant against every other
  method, and every method against `uniform`."""
  return [(a, b) for a in methods for b in methods
          if a != b and (a.startswith("amf") and not b.startswith("amf") or b == "uniform")]


def write_tables(workdir: str, tables: dict) -> None:
  """The tidy tables, `summary.csv` (per method) and `paired.csv` (seed-paired comparisons,
  with their minimal detectable differences), and a log line per comparison."""
  for (name, table), columns in zip(tables.items(), (METRIC_COLUMNS, PER_TASK_COLUMNS,
                                                      ALLOCATION_COLUMNS)):
    # Allocations also give each asked task's parameters, c0 ... c{P-1}.
    metrics.write_csv(os.path.join(workdir, f"{name}.csv"), table,
                      list(table[0]) if name == "allocations" and table else columns)
  rows = tables["metrics"]
  summary = metrics.summary(rows, "success") + metrics.summary(rows, "return")
  metrics.write_csv(os.path.join(workdir, "summary.csv"), summary, list(summary[0]))
  methods = list(dict.fromkeys(r["method"] for r in rows))
  paired = [gap for a, b in comparisons(methods) for value in ("success", "return")
            for gap in metrics.paired_gap(rows, value, a, b)]
  if paired:
    metrics.write_csv(os.path.join(workdir, "paired.csv"), paired, list(paired[0]))
  for g in paired:
    logging.info("%s - %s, %s, %s: final %+.3f [%+.3f, %+.3f] (MDD %.3f), AUC %+.3f [%+.3f, "
                 "%+.3f] (MDD %.3f)", g["method_a"], g["method_b"], g["variant"], g["metric"],
                 g["final_mean"], g["final_low"], g["final_high"], g["final_mdd"],
                 g["auc_mean"], g["auc_low"], g["auc_high"], g["auc_mdd"])


def enable_compilation_cache() -> str:
  """Keeps compiled programs on disk, so a rerun (a resumed or repeated sweep) loads them
  instead of compiling again: in `$JAX_COMPILATION_CACHE_DIR` when set, else the user's cache
  dir (`$XDG_CACHE_HOME` or `~/.cache`, then `amf/jax`). Returns the directory."""
  path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "amf", "jax")
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path


def main(run: Callable[..., object], default_config: str, default_workdir: str) -> None:
  """Runs `run(config, workdir, overwrite)` as an absl app with `--config`, `--workdir` and
  `--overwrite`.

  The flags are defined here, when a module runs as a script, not on import, so experiments
  can be imported side by side (tests, benchmarks, the launcher).
  """
  config_flags.DEFINE_config_file("config", default_config)
  flags.DEFINE_string("workdir", default_workdir, "Where all outputs go.")
  flags.DEFINE_bool("overwrite", False, "Delete a workdir holding another config's outputs "
                    "instead of refusing it.")
  def main_(argv):
    del argv
    logging.info("Compiled programs cached in %s", enable_compilation_cache())
    # Not returned: absl exits with the return value as the status.
    run(flags.FLAGS.config, flags.FLAGS.workdir, overwrite=flags.FLAGS.overwrite)

  cli.run(main_)
