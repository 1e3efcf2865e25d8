"""AMF-GP vs baselines on the 2-D integrator, pre-trained on the first k of 12 tasks.

  python -m experiments.integrator_gp --config=configs/integrator_gp.py --workdir=runs/igp

Every method is one compiled program over all (k, seed) runs. Writes into --workdir:
metrics.csv, per_task.csv, allocations.csv, summary.csv, stability.csv, paired.csv, config.json,
PNG figures, and orbax checkpoints under checkpoints/ from which a killed run resumes.
"""
import os

import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from amf import data, envs, gp_kernels, plotting, sweep
from amf.gp_policy import GPPolicy
from experiments import arm_index, common

def validate(config: ml_collections.ConfigDict) -> np.ndarray:
  """Refuses a bad config before anything compiles; returns the target mu."""
  env = envs.make(config.env, **config.env_kwargs)
  target = common.validate_loop(config, env)
  gp_kernels.make(config.gp_kernel, env.observation_size, env.task_feature_size, 1.0, 1.0)
  if not config.ks or any(not 1 <= k <= env.num_tasks for k in config.ks):
    raise ValueError(f"ks must be values in 1..{env.num_tasks}, got {tuple(config.ks)}.")
  if min(config.state_scale, config.task_scale) <= 0:
    raise ValueError("state_scale and task_scale must be positive.")
  return target


def setup(config: ml_collections.ConfigDict):
  """The environment, the GP learner, and the batch of runs: one per (k, seed).

  Returns `(env, learner, (keys, pretrain_weights, variant_labels, seeds))`.
  """
  env = envs.make(config.env, **config.env_kwargs)
  kernel = gp_kernels.make(config.gp_kernel, env.observation_size, env.task_feature_size,
                        config.state_scale, config.task_scale, config.amplitude)
  learner = GPPolicy(env, kernel, config.noise, config.action_std)
  seeds = np.tile(np.arange(config.num_seeds), len(config.ks))
  ks = np.repeat(np.asarray(config.ks), config.num_seeds)
  weights = jnp.stack([data.mix_weights("subset", env.num_tasks, k=k) for k in ks])
  return env, learner, (sweep.seed_keys(config.seed, seeds), weights, [f"k={k}" for k in ks],
                        seeds)


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False,
        arms: str = "") -> list[dict]:
  """Runs every method on every (k, seed); writes the outputs; returns the metric rows."""
  target = validate(config)
  common.prepare_workdir(config, workdir, overwrite)
  env, learner, (keys, weights, variants, seeds) = setup(config)
  tables = sweep.methods(sweep.Spec.from_config(config), env, learner,
                         sweep.Runs(keys, weights, variants, seeds), workdir, target,
                         store=arm_index.folder(arms, workdir))
  common.write_tables(workdir, tables, config.eval_episodes)
  figures(config, workdir, tables["metrics"], tables["allocations"], env)
  return tables["metrics"]


def figures(config, workdir, rows, allocations, env) -> None:
  shown = [f"k={k}" for k in config.plot_ks if k in config.ks]
  order = [f"k={k}" for k in config.ks]
  for value in ("success", "return"):
    plotting.curves(rows, os.path.join(workdir, f"curves_{value}.png"), value, variants=shown,
                    title=f"AMF-GP on the integrator: {value} vs round (pre-training on k tasks)")
    if {"amf", "uniform"} <= {r["method"] for r in rows}:  # not with estimator variants
      plotting.gap_vs_variant(rows, os.path.join(workdir, f"gap_{value}.png"), value, "amf",
                              "uniform", variant_order=order,
                              xlabel="k (tasks covered by pre-training)",
                              title=f"AMF - uniform ({value})")
  plotting.allocations(allocations, os.path.join(workdir, "allocations.png"), env,
                       config.task_space == "continuous", config.target_region,
                       "Tasks asked for, per round", variants=shown)
  logging.info("Figures and tables in %s", os.path.abspath(workdir))


if __name__ == "__main__":
  common.main(run, "configs/integrator_gp.py", "runs/integrator_gp")
