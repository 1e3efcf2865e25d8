"""Evaluates an environment's scripted expert per task: discrete set and continuous samples.

  python -m experiments.experts --config=configs/experts.py:reacher --workdir=DIR

Writes into DIR: metrics.csv (one row per task: env, set, task, seed, return, success and the
task's features), config.json and expert_success.png. Logs whether every discrete task and the
continuous set reach `min_success`.
"""
import os
import time

import jax
import matplotlib
import ml_collections
import numpy as np
from absl import logging

from amf import envs, metrics
from amf.rollout import evaluate, expert_actor
from experiments import common

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position


COLUMNS = ("env", "set", "task", "seed", "return", "success", "feature_0", "feature_1")


def validate(config: ml_collections.ConfigDict) -> envs.MultiTaskEnv:
  """Builds the environment, refusing a bad config before anything compiles."""
  env = envs.make(config.env, **config.env_kwargs)
  if config.episodes < 1 or config.continuous_tasks < 1:
    raise ValueError(f"episodes and continuous_tasks must be at least 1, "
                     f"got {config.episodes} and {config.continuous_tasks}.")
  if not 0 <= config.min_success <= 1:
    raise ValueError(f"min_success must lie in [0, 1], got {config.min_success}.")
  return env


def rows(env_name, kind, tasks, features, seed, evaluation) -> list[dict]:
  return [dict(env=env_name, set=kind, task=i, seed=seed, **{"return": float(r)},
               success=float(s), feature_0=float(f[0]), feature_1=float(f[-1]))
          for i, (r, s, f) in enumerate(zip(evaluation.ret, evaluation.success, features))]


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False) -> list[dict]:
  """Evaluates the expert, writes the outputs, returns the metric rows."""
  env = validate(config)
  common.prepare_workdir(config, workdir, overwrite)

  key_discrete, key_tasks, key_continuous = jax.random.split(jax.random.PRNGKey(config.seed), 3)
  continuous = env.sample_tasks(key_tasks, config.continuous_tasks)
  run_tasks = jax.jit(lambda key, tasks, episodes: evaluate(env, expert_actor(env), key, tasks,
                                                            episodes), static_argnums=2)
  start = time.time()
  discrete_eval = jax.block_until_ready(run_tasks(key_discrete, env.tasks, config.episodes))
  logging.info("discrete: %d tasks x %d episodes in %.1fs (compile included)", env.num_tasks,
               config.episodes, time.time() - start)
  start = time.time()
  continuous_eval = jax.block_until_ready(run_tasks(key_continuous, continuous, 1))
  logging.info("continuous: %d tasks in %.1fs (compile included)", len(continuous),
               time.time() - start)

  phi = jax.vmap(env.task_features)  # of one task each (`MultiTaskEnv.task_features`)
  table = (rows(config.env, "discrete", env.tasks, phi(env.tasks), config.seed, discrete_eval)
           + rows(config.env, "continuous", continuous, phi(continuous), config.seed,
                  continuous_eval))
  metrics.write_csv(os.path.join(workdir, "metrics.csv"), table, COLUMNS)
  figure(config.env, table, config.min_success, os.path.join(workdir, "expert_success.png"))

  per_task = np.asarray(discrete_eval.success)
  overall = float(np.mean(continuous_eval.success))
  for i, (s, r) in enumerate(zip(per_task, discrete_eval.ret)):
    logging.info("%s task %d: success %.3f, return %.2f", config.env, i, s, r)
  logging.info("%s continuous (%d tasks): success %.3f", config.env, len(continuous), overall)
  passed = per_task.min() >= config.min_success and overall >= config.min_success
  logging.info("%s expert %s the %.0f%% bar (worst discrete task %.3f, continuous %.3f).",
               config.env, "clears" if passed else "MISSES", 100 * config.min_success,
               per_task.min(), overall)
  return table


def figure(env_name, table, min_success, path) -> None:
  """Bars of per-task success on the finite set; continuous tasks' goals coloured by success."""
  discrete = [r for r in table if r["set"] == "discrete"]
  continuous = [r for r in table if r["set"] == "continuous"]
  fig, (bars, goals) = plt.subplots(1, 2, figsize=(10, 4))
  bars.bar([r["task"] for r in discrete], [r["success"] for r in discrete], color="tab:blue")
  bars.axhline(min_success, color="k", ls="--", lw=1, label=f"{min_success:.0%} bar")
  bars.set(xlabel="task", ylabel="success rate", ylim=(0, 1.05),
           title=f"{env_name}: expert success per task")
  bars.legend(loc="lower right")
  ok = np.array([r["success"] > 0.5 for r in continuous])
  xy = np.array([[r["feature_0"], r["feature_1"]] for r in continuous])
  goals.scatter(*xy[ok].T, s=12, c="tab:green", label=f"success ({ok.mean():.1%})")
  goals.scatter(*xy[~ok].T, s=12, c="tab:red", marker="x", label="failure")
  goals.scatter([r["feature_0"] for r in discrete], [r["feature_1"] for r in discrete], s=60,
                facecolors="none", edgecolors="k", label="finite task set")
  goals.set(xlabel="task feature 0 (goal x)", ylabel="task feature 1 (goal y)", aspect="equal",
            title=f"{len(continuous)} continuous tasks")
  goals.legend(loc="best", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


if __name__ == "__main__":
  common.main(run, "configs/experts.py", "runs/experts")
