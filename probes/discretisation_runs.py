"""The discretisation study's AMF runs outside the study (`configs/studies/discretisation.py`):
its config per environment and the pre-trained initial carries, for the scripts that look
inside its rounds (`bench_discretisation`, `search_gain`)."""
import importlib

import jax

from amf.active import LoopConfig, make_loop
from configs.studies import discretisation
from experiments import active_finetune, integrator_gp
from launch import studies

# The study's processes at the paper scale, one per environment (and learner): the choices of
# the scripts' `--study_env`.
PROCESSES = {p.env: p for p in studies.processes(discretisation.get_config("paper"))}


def study_config(name: str, seeds: int):
  """The experiment module and config of the study's environment `name` (paper scale), with
  `seeds` runs of AMF alone."""
  process = PROCESSES[name]
  c = studies.experiment_config(process)
  c.num_seeds, c.methods = seeds, ("amf",)
  return importlib.import_module(process.module), c


def setup(module, c, short_pretraining: bool = True):
  """Environment, learner and the pre-trained initial carries of the config's runs (with
  `short_pretraining`, 200 BC steps: latency does not depend on how well the policy is
  trained)."""
  if module is integrator_gp:
    env, learner, (keys, weights, *_) = integrator_gp.setup(c)
  else:
    if short_pretraining:
      c.pretrain_steps = 200
    env, _ = active_finetune.validate(c)
    learner = active_finetune.learner(c, env)
    runs = active_finetune.runs(c, env)
    keys, weights = runs.keys, runs.weights
  loop = make_loop(env, learner, LoopConfig.from_config(c, c.methods))
  return env, learner, jax.block_until_ready(jax.jit(jax.vmap(loop.init))(keys, weights))


