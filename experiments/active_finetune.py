"""AMF-NN vs baselines: active fine-tuning of a pre-trained MLP policy by BC.

  python -m experiments.active_finetune --config=configs/active_finetune.py:reacher \
      --workdir=runs/reacher

Each run pre-trains a policy by BC on its pre-training mix (the `variant` column), then for
every round selects tasks, asks the expert, fine-tunes with the forgetting mitigation and
evaluates, all inside one jitted, vmapped program per group of methods. The pre-trained runs
are checkpointed once with orbax and shared by every method; a killed run resumes from its
last checkpoint. Writes metrics.csv, per_task.csv, allocations.csv, summary.csv, stability.csv,
paired.csv, config.json and PNG figures into --workdir.
"""
import json
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from amf import data, envs, nn_kernels, nn_learner, plotting, sweep
from amf.nn_learner import NNLearner
from experiments import arm_index, common


class Mix(NamedTuple):
  """A pre-training mix of the config: its `data.mix_weights` name, `k`, strength and label."""
  name: str
  k: int
  strength: float
  label: str


def parse_mix(spec: str, config, num_tasks: int) -> Mix:
  """A mix spec of `config.mixes`: `uniform`, `skewed` / `subset` (with the config's
  `skew_strength` / `subset_k`), or `skewed:S` / `subset:K` with their own value, so several
  strengths or `k`s are value variants of one compiled program."""
  name, sep, value = spec.partition(":")
  if name not in data.TASK_MIXES:
    raise ValueError(f"Unknown task mix {name!r} in {spec!r}; choose one of {data.TASK_MIXES}.")
  if sep and name == "uniform":
    raise ValueError(f"The uniform mix takes no value, got {spec!r}.")
  try:
    k = int(value) if sep and name == "subset" else config.subset_k or num_tasks // 2
    strength = float(value) if sep and name == "skewed" else float(config.skew_strength)
  except ValueError as e:
    raise ValueError(f"Bad mix {spec!r}: subset:K takes a whole K, skewed:S a number.") from e
  if name == "subset" and not 1 <= k <= num_tasks:
    raise ValueError(f"{spec!r}: subset k must be in 1..{num_tasks}, got {k}.")
  label = {"uniform": "uniform", "subset": f"subset(k={k})", "skewed": f"skewed({strength:g})"}
  return Mix(name, k, strength, label[name])


def parse_mixes(config, num_tasks: int) -> list[Mix]:
  """Every mix of `config.mixes`; two specs of the same mix (e.g. `subset` and `subset:4`
  with 8 tasks) are refused, as their rows could not be told apart."""
  if not config.mixes:
    raise ValueError("mixes must name at least one pre-training mix.")
  mixes = [parse_mix(spec, config, num_tasks) for spec in config.mixes]
  labels = [m.label for m in mixes]
  if len(set(labels)) < len(labels):
    raise ValueError(f"mixes {tuple(config.mixes)} name the same mix twice ({labels}).")
  return mixes


def validate(config: ml_collections.ConfigDict):
  """Refuses a bad config before anything compiles; returns the environment and mu."""
  env = envs.make(config.env, **config.env_kwargs)
  target = common.validate_loop(config, env)
  if not config.kernels:
    raise ValueError("kernels must name at least one kernel.")
  for name in config.kernels:
    nn_kernels.get(name)
  if not 0 <= config.subset_k <= env.num_tasks:
    raise ValueError(f"subset_k must be in 0..{env.num_tasks} (0: half), got {config.subset_k}.")
  parse_mixes(config, env.num_tasks)
  common.validate_learner(config)
  if config.finetune_steps < 1:
    raise ValueError("finetune_steps must be at least 1.")
  learner(config, env)  # an unknown forgetting mode or a bad option fails here
  return env, target


def read_config(workdir: str, who: str) -> ml_collections.ConfigDict:
  """The config.json an AMF-NN experiment wrote into `workdir`; a ValueError, naming the
  caller `who`, where it cannot be read or is not an AMF-NN experiment's (no network kernels)."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (OSError, json.JSONDecodeError) as e:
    raise ValueError(f"{who}: cannot read {path} ({e}).") from None
  if "kernels" not in config:
    raise ValueError(f"{who}: {workdir} is not an AMF-NN experiment's (its config has no "
                     "network kernels).")
  return config


def learner(config: ml_collections.ConfigDict, env) -> NNLearner:
  return nn_learner.make(nn_learner.Spec.from_config(config), env)


def runs(config: ml_collections.ConfigDict, env) -> sweep.Runs:
  """One run per (pre-training mix, seed)."""
  mixes = parse_mixes(config, env.num_tasks)
  seeds = np.tile(np.arange(config.num_seeds), len(mixes))
  weights = jnp.stack([data.mix_weights(m.name, env.num_tasks, k=m.k, strength=m.strength)
                       for m in mixes for _ in range(config.num_seeds)])
  return sweep.Runs(sweep.seed_keys(config.seed, seeds), weights,
                     [m.label for m in mixes for _ in range(config.num_seeds)], seeds)


def run(config: ml_collections.ConfigDict, workdir: str, overwrite: bool = False,
        arms: str = "") -> list[dict]:
  """Runs every arm on every (mix, seed); writes the outputs; returns metric rows."""
  env, target = validate(config)
  common.prepare_workdir(config, workdir, overwrite)
  nn = learner(config, env)
  batch = runs(config, env)
  check = lambda initial: nn.check_kernels(jax.tree.map(lambda x: x[0], initial.learner),
                                           jax.tree.map(lambda x: x[0], initial.data),
                                           jax.random.PRNGKey(config.seed))
  tables = sweep.methods(sweep.Spec.from_config(config), env, nn, batch, workdir, target,
                         check=check, store=arm_index.folder(arms, workdir))
  common.write_tables(workdir, tables, config.eval_episodes)
  figures(config, workdir, tables, env)
  return tables["metrics"]


def figures(config: ml_collections.ConfigDict, workdir: str, tables: dict, env) -> None:
  rows, env_name = tables["metrics"], config.env
  for value in ("success", "return"):
    plotting.curves(rows, os.path.join(workdir, f"curves_{value}.png"), value,
                    title=f"AMF-NN on {env_name}: {value} vs round, per pre-training mix")
    plotting.bars(rows, os.path.join(workdir, f"bars_{value}.png"), value)
  plotting.allocations(tables["allocations"], os.path.join(workdir, "allocations.png"), env,
                       config.task_space == "continuous", config.target_region,
                       f"Tasks asked for per round on {env_name}")
  logging.info("Figures and tables in %s", os.path.abspath(workdir))


if __name__ == "__main__":
  common.main(run, "configs/active_finetune.py", "runs/active_finetune")
