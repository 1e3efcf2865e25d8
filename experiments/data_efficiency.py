"""BC data-efficiency curves: does the learner improve with demonstrations? (docs/testbed.md)

  python -m experiments.data_efficiency --config=configs/data_efficiency.py:reacher \
      --workdir=runs/data_efficiency_reacher

A study of which demonstrations to ask for has an answer only if demonstrations improve the
policy. Two curves, each a batch of BC runs from scratch (the studies' learner,
`configs/testbed.py`), vmapped over seeds:

- `uniform`: `n` demonstrations of every task, for `n` in `ns`; success and return on every task.
- `per_task`: `n` demonstrations of one task and `per_task_base` of every other; success on that
  task. This is what selection exploits: what a task gains from its own demonstrations beyond
  what its neighbours' give.

Each seed draws `max(ns)` (DART) demonstrations of every task once, and a run uses the first
`n` of each task's, so a curve's points are nested and paired by seed; a seed's runs share
their initialisation and evaluation keys. One compiled program per curve; each chunk of runs
(one `n`, or one task) is checkpointed with orbax, so a killed run resumes. Writes curve.csv
(one row per curve x task x n x seed), summary.csv, config.json and data_efficiency.png.
"""
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from amf import bc, checkpoint, data, envs, metrics, plotting, sweep
from amf.nn_policy import make_policy
from amf.rollout import evaluate, policy_actor
from experiments import common

COLUMNS = ("env", "curve", "task", "n", "seed", "return", "success", "bc_loss")


def validate(config: ml_collections.ConfigDict):
  """Refuses a bad config before anything compiles; returns the environment."""
  env = envs.make(config.env, **config.env_kwargs)
  if not config.ns or min(config.ns) < 1:
    raise ValueError(f"ns must be demonstration counts >= 1, got {tuple(config.ns)}.")
  if min(config.per_task_ns, default=0) < 0:
    raise ValueError(f"per_task_ns must be counts >= 0, got {tuple(config.per_task_ns)}.")
  most = max(config.ns)
  if max(config.per_task_ns, default=0) > most or not 0 <= config.per_task_base <= most:
    raise ValueError(f"per_task_ns and per_task_base draw on the max(ns) = {most} "
                     f"demonstrations of each task, got {tuple(config.per_task_ns)} and "
                     f"{config.per_task_base}.")
  bad = [t for t in config.per_task_tasks if not 0 <= t < env.num_tasks]
  if bad:
    raise ValueError(f"per_task_tasks {bad} are not tasks of {config.env} "
                     f"(0..{env.num_tasks - 1}).")
  common.validate_learner(config)
  return env


def make_run(config: ml_collections.ConfigDict, env, per_task: int):
  """`run(demos, counts, key, eval_tasks) -> (returns, success, bc_loss)` of one BC run.

  BC from scratch on the first `counts[t]` demonstrations of each task `t` of `demos` (laid
  out task by task, `per_task` each), then an evaluation on `eval_tasks`.
  """
  policy = make_policy(env.observation_size, env.task_feature_size, env.action_size,
                       tuple(config.hidden), config.action_std, config.head)
  optimizer = optax.adam(config.learning_rate)
  rank = jnp.tile(jnp.arange(per_task), env.num_tasks)

  def run(demos: data.Dataset, counts: jax.Array, key: jax.Array, eval_tasks: jax.Array):
    used = demos._replace(mask=rank < counts[demos.task_id])
    k_fit, k_eval = jax.random.split(key)
    params, _, losses = bc.pretrain(policy, optimizer, used, env.task_features, k_fit,
                                    config.pretrain_steps, config.bc_batch_size,
                                    config.lr_decay)
    actor = policy_actor(env, lambda obs, phi: policy.act(params, obs, phi))
    ev = evaluate(env, actor, k_eval, eval_tasks, config.eval_episodes, config.eval_task_batch)
    return ev.ret, ev.success, losses[-100:].mean()

  return run


def chunks(config: ml_collections.ConfigDict, num_tasks: int):
  """`(curve, label, counts (B, K), eval_task (B,) or None)` per chunk of runs (x seeds)."""
  out = [("uniform", f"n={n}", np.full((1, num_tasks), n), None) for n in config.ns]
  for task in (config.per_task_tasks or range(num_tasks)) if config.per_task_ns else ():
    counts = np.full((len(config.per_task_ns), num_tasks), config.per_task_base)
    counts[:, task] = config.per_task_ns
    out.append(("per_task", f"task={task}", counts, np.full(len(config.per_task_ns), task)))
  return out


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False) -> list[dict]:
  """Runs both curves (resuming finished chunks); writes the outputs; returns the rows."""
  env = validate(config)
  common.prepare_workdir(config, workdir, overwrite)
  k, most = env.num_tasks, max(config.ns)
  seeds = np.arange(config.num_seeds)
  keys = sweep.seed_keys(config.seed, seeds)
  demo_keys, run_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
  start = time.time()
  ids = jnp.repeat(jnp.arange(k), most)
  demos = jax.block_until_ready(jax.jit(jax.vmap(
      lambda key: data.demonstrate(env, key, ids, config.demo_noise)))(demo_keys))
  logging.info("%d seeds x %d demonstrations drawn in %.1fs", len(seeds), k * most,
               time.time() - start)

  one = make_run(config, env, most)
  # Runs of a chunk: (count setting, seed) pairs, flattened; every seed sees its own demos.
  per_seed = jax.vmap(one, in_axes=(0, None, 0, None))
  all_tasks = jax.jit(jax.vmap(per_seed, in_axes=(None, 0, None, None)))
  one_task = jax.jit(jax.vmap(lambda d, c, key, t: per_seed(d, c, key, env.tasks[t][None]),
                              in_axes=(None, 0, None, 0)))
  rows = []
  for curve, label, counts, task in chunks(config, k):
    path = os.path.join(workdir, "checkpoints", curve, label)
    args = (demos, jnp.asarray(counts), run_keys)
    program, args = (all_tasks, args + (env.tasks,)) if task is None else (
        one_task, args + (jnp.asarray(task),))
    if os.path.exists(path):
      result = checkpoint.restore(path, jax.eval_shape(program, *args))
    else:
      start = time.time()
      result = jax.block_until_ready(program(*args))
      checkpoint.save(path, result)
      logging.info("%s %s: %d runs in %.1fs", curve, label, counts.shape[0] * len(seeds),
                   time.time() - start)
    rows += chunk_rows(config.env, curve, counts, task, seeds, result)
  metrics.write_csv(os.path.join(workdir, "curve.csv"), rows, COLUMNS)
  table = metrics.curve_summary(rows)
  metrics.write_csv(os.path.join(workdir, "summary.csv"), table, list(table[0]))
  for row in table:
    logging.info("%s n=%d%s: success %.3f [%.3f, %.3f], return %.2f", row["curve"], row["n"],
                 "" if row["task"] == "all" else f" (task {row['task']})", row["success_mean"],
                 row["success_low"], row["success_high"], row["return_mean"])
  plotting.data_efficiency(rows, os.path.join(workdir, "data_efficiency.png"),
                           config.per_task_base,
                           title=f"BC on {config.env}: success against demonstrations "
                                 f"(DART noise {config.demo_noise:g})")
  logging.info("Figures and tables in %s", os.path.abspath(workdir))
  return rows


def chunk_rows(env_name, curve, counts, task, seeds, result) -> list[dict]:
  """Rows of one chunk: `result` = (returns, success, loss), leaves (B, seeds, T[, ...])."""
  returns, success, loss = (np.asarray(x) for x in result)
  rows = []
  for b, s in np.ndindex(counts.shape[0], len(seeds)):
    tasks = range(counts.shape[1]) if task is None else [int(task[b])]
    for i, t in enumerate(tasks):
      rows.append(dict(env=env_name, curve=curve, task=t, n=int(counts[b, t]), seed=int(seeds[s]),
                       **{"return": float(returns[b, s, i])}, success=float(success[b, s, i]),
                       bc_loss=float(loss[b, s])))
  return rows


if __name__ == "__main__":
  common.main(run, "configs/data_efficiency.py", "runs/data_efficiency")
