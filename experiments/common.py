"""What every active-loop experiment does around its loop: config checks, workdir, tables, flags.

An experiment builds an environment, a learner and a batch of runs (`amf.sweep.Runs`, one
per seed x value variant); `amf.sweep.methods` pre-trains once for every method (checkpointed
with orbax, so a rerun or another method re-uses it) and runs one compiled program per group
of methods; `write_tables` then writes `metrics.csv`, `per_task.csv`, `allocations.csv`,
`summary.csv`, `stability.csv` and `paired.csv`.
"""
import inspect
import json
import os
import shutil
import time
from typing import Callable, Sequence

import jax
import ml_collections
import numpy as np
from absl import flags, logging
from ml_collections import config_flags

from amf import bc, cli, metrics
from amf.active import LoopConfig
from amf.arms import canonical
from amf.task_spaces import target_weights

METRIC_COLUMNS = ("env", "method", "variant", "seed", "round", "num_demos", "return", "success")
PER_TASK_COLUMNS = ("env", "method", "variant", "seed", "round", "task", "return", "success")
ALLOCATION_COLUMNS = ("env", "method", "variant", "seed", "round", "task")


def validate_loop(config: ml_collections.ConfigDict, env) -> np.ndarray:
  """Refuses the loop settings every loop experiment shares; returns the target mu (T,)."""
  if not config.proposals:
    raise ValueError("proposals must name at least one candidate proposal.")
  for spec in config.proposals:
    LoopConfig.from_config(config, config.methods, spec).validate(env)
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
  """Refuses bad settings of the BC learner and its evaluation that every NN experiment shares
  (`configs/testbed.py`)."""
  if min(config.action_std, config.learning_rate) <= 0 or config.demo_noise < 0:
    raise ValueError("action_std and learning_rate must be positive, demo_noise >= 0.")
  if min(config.bc_batch_size, config.pretrain_steps) < 1:
    raise ValueError("bc_batch_size and pretrain_steps must be at least 1.")
  bc.check_decay(config.lr_decay)
  if min(config.num_seeds, config.eval_episodes) < 1:
    raise ValueError("num_seeds and eval_episodes must be at least 1.")


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str,
                    overwrite: bool = False) -> None:
  """Makes `workdir` ready for `config`'s outputs and writes `config.json`; call it before
  anything compiles.

  A workdir holding the outputs of the same config (equal but for settings that change no
  number, `amf.arms.canonical`) is resumed. One that holds another config's is refused, naming
  the settings that differ, unless `overwrite`, which deletes it first; one that cannot be
  written is refused.
  """
  path = os.path.join(workdir, "config.json")
  text = config.to_json(indent=2)
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    old, new = canonical(old), canonical(json.loads(text))
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


def write_tables(workdir: str, tables: dict, eval_episodes: int) -> None:
  """The tidy tables, `summary.csv` (per method), `stability.csv` (per method: the gain of the
  last round over round 0 and the round-to-round swing, `metrics.stability`) and `paired.csv`
  (seed-paired comparisons, with their minimal detectable differences), and a log line per
  comparison and per method's stability."""
  for (name, table), columns in zip(tables.items(), (METRIC_COLUMNS, PER_TASK_COLUMNS,
                                                      ALLOCATION_COLUMNS)):
    # Allocations also give each asked task's parameters, c0 ... c{P-1}.
    metrics.write_csv(os.path.join(workdir, f"{name}.csv"), table,
                      list(table[0]) if name == "allocations" and table else columns)
  rows = tables["metrics"]
  summary = metrics.summary(rows, "success") + metrics.summary(rows, "return")
  metrics.write_csv(os.path.join(workdir, "summary.csv"), summary, list(summary[0]))
  stable = metrics.stability(rows, tables["per_task"], eval_episodes)
  metrics.write_csv(os.path.join(workdir, "stability.csv"), stable, list(stable[0]))
  for g in stable:
    logging.info("%s, %s: success final - round 0 %+.3f [%+.3f, %+.3f] (MDD %.3f); a seed's "
                 "change between rounds %.3f [%.3f, %.3f] on average, %.3f at most (evaluation "
                 "noise alone: %.3f)",
                 g["method"], g["variant"], g["gain_mean"], g["gain_low"], g["gain_high"],
                 g["gain_mdd"], g["swing_mean"], g["swing_low"], g["swing_high"], g["swing_max"],
                 g["swing_floor"])
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
  """Runs `run(config, workdir, overwrite, arms)` as an absl app with `--config`, `--workdir`,
  `--overwrite` and `--arms`.

  The flags are defined here, when a module runs as a script, not on import, so experiments
  can be imported side by side (tests, benchmarks, the launcher).
  """
  config_flags.DEFINE_config_file("config", default_config)
  flags.DEFINE_string("workdir", default_workdir, "Where all outputs go.")
  flags.DEFINE_bool("overwrite", False, "Delete a workdir holding another config's outputs "
                    "instead of refusing it.")
  sweeps = "arms" in inspect.signature(run).parameters  # a method sweep (`amf.sweep.methods`)
  if sweeps:
    flags.DEFINE_string("arms", "", "A folder shared by a plan's processes (`experiments.arm_index`): arms "
                        "that a finished process computed with the same settings are read "
                        "from its tables instead of run again; `launch.reproduce` sets it.")
  def main_(argv):
    del argv
    logging.info("Compiled programs cached in %s", enable_compilation_cache())
    # Not returned: absl exits with the return value as the status.
    run(flags.FLAGS.config, flags.FLAGS.workdir, overwrite=flags.FLAGS.overwrite,
        **({"arms": flags.FLAGS.arms} if sweeps else {}))

  cli.run(main_)
