"""The ablation plan (docs/design.md §9) and the paper's studies, one config module each.

A study's `get_config(scale)` names its question, its reference arm, its metrics and its
environments: per environment, the experiment module, its config argument and the study's
overrides. Value variants (estimators, kernels, pre-training mixes) are overrides of one
process, so they share its compiled programs; a variant that changes a static shape (the batch
size) or the learner's code (the forgetting mode) lists `processes`, one each.
`python -m launch.reproduce --figures=ablations` runs them all and writes `REPORT.md`.
"""
import importlib

import ml_collections

from amf import envs
from configs import testbed

# In the order the report shows them: the seed ablations (docs/design.md §9, 1-3; 2 also on the
# categorical head, where it has content), then the paper's.
STUDIES = ("importance_weights", "kernels", "kernels_categorical", "pretraining_mix", "discretisation", "batch_size",
           "forgetting", "rebalancing", "matched_vs_mismatched", "integrator_k_sweep")
SCALES = ("quick", "paper")
# Seeds by power: at the paper scale an NN study on an environment runs its testbed's
# `study_seeds` (`amf.envs.registry.Testbed`), the seeds its comparisons with the reference need
# for a minimal detectable difference of at most 0.05 success AUC (80% power, at most 40), from
# pilots' seed-paired spreads (docs/studies.md, "Seeds by power"). A process that ran with more
# keeps them (its study says so): more seeds only narrow its CIs.


def get(name: str, scale: str) -> ml_collections.ConfigDict:
  """The config of study `name` at `scale`; unknown names are refused."""
  if name not in STUDIES:
    raise ValueError(f"Unknown study {name!r}; choose from {list(STUDIES)}.")
  if scale not in SCALES:
    raise ValueError(f"Unknown scale {scale!r}; choose one of {SCALES}.")
  config = importlib.import_module(f"configs.studies.{name}").get_config(scale)
  if config.name != name:
    raise ValueError(f"configs/studies/{name}.py names its study {config.name!r}.")
  return config


def study(name: str, question: str, reference: dict, envs: dict, scale: str,
          outside=(), gap=None, metrics=("success", "return")) -> ml_collections.ConfigDict:
  """A study's config.

  Args:
    name: its module's name.
    question: what it asks, one sentence for the report.
    reference: the arm every arm is compared with, as the coordinates it changes: `method`
      (the `method` column), `variant` (the `variant` column) and/or `process` (a process of
      a multi-process environment); e.g. `{"method": "uniform"}` compares each arm with `uniform`
      under the same pre-training mix.
    envs: environment name -> `integrator_gp(...)` or `active_finetune(...)`.
    scale: `quick` or `paper`.
    outside: arm methods shown as outside references (privileged or oracle ones).
    gap: `(method_a, method_b)` whose seed-paired gap the report draws against the variants.
    metrics: the metric columns reported.
  """
  c = ml_collections.ConfigDict()
  c.name, c.question, c.scale = name, question, scale
  c.reference = dict(reference)
  c.outside = tuple(outside)
  c.gap = tuple(gap or ())
  c.metrics = tuple(metrics)
  c.envs = {env: dict(spec) for env, spec in envs.items()}
  return c


def integrator_gp(scale: str, processes=None, **overrides) -> dict:
  """AMF-GP on the integrator (`experiments.integrator_gp`) with `overrides` of its config;
  `processes` maps a process name to its own further overrides."""
  return dict(module="experiments.integrator_gp", config=f"configs/integrator_gp.py:{scale}",
              overrides=overrides, processes=processes or {})


def active_finetune(env: str, scale: str, processes=None, shards: bool = False,
                    **overrides) -> dict:
  """AMF-NN on `env` (`experiments.active_finetune`) with `overrides`; `processes` as above.
  `shards`: the processes only split one process's value variants (e.g. one mix each), so the
  report reads them as one process. At the paper scale the seeds are the testbed's
  `study_seeds` unless `overrides` set them."""
  arg = f"{env},quick" if scale == "quick" else env
  seeds = envs.testbed(env).study_seeds
  if scale == "paper" and seeds:
    overrides = {"num_seeds": seeds, **overrides}
  return dict(module="experiments.active_finetune", config=f"configs/active_finetune.py:{arg}",
              overrides=overrides, processes=processes or {}, shards=shards)


def pilot_seeds(env: str, scale: str) -> dict:
  """The seed override of a study that ran on reacher with its 40 seeds as a pilot of
  `study_seeds`, before that rule: it keeps them."""
  return dict(num_seeds=40) if scale == "paper" and env == "reacher" else {}


def num_tasks(env: str) -> int:
  """The number of tasks of an NN study's environment (its testbed default)."""
  return testbed.get_config(env).env_kwargs.num_tasks


def nn_envs(scale: str, quick: bool = True) -> list[tuple[str, str]]:
  """`(name, env)` of the NN environments a study runs, by their testbeds: every registered
  one at the paper's scale; at the quick one (with `quick`) those marked `quick_studies`
  (reacher and pusher cost minutes per process on a laptop CPU). A process is named by its
  testbed's `study_name` (the integrator's `integrator_nn`, apart from AMF-GP's
  `integrator_gp`), else by its environment."""
  return [(reg.testbed.study_name or env, env) for env, reg in envs.ENVS.items()
          if scale == "paper" or (quick and reg.testbed.quick_studies)]
