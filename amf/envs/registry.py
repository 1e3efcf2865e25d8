"""Environments registered by name, each with its testbed: what every study of it starts from.

An environment is its module plus one `register(name, cls, Testbed(...))` call at its end;
`amf/envs/__init__.py` imports the modules. Every config, study and launcher figure that runs
an environment reads its settings from here (`configs/testbed.py`, `configs/active_finetune.py`,
`configs/studies/`, `launch/reproduce.py`), so a new environment needs nothing else
(`tests/test_env_registry.py` registers one and runs a study process on it).
"""
from typing import Callable, Mapping, NamedTuple

from amf import registry
from amf.envs.base import MultiTaskEnv


class Learner(NamedTuple):
  """The BC learner of the environment's NN studies (`configs/testbed.py`), chosen on its
  data-efficiency curves (docs/testbed.md)."""
  hidden: tuple[int, ...]
  demo_noise: float = 0.0       # DART: std of the noise on the expert's executed actions
  action_std: float = 0.05      # the Gaussian head's fixed std
  pretrain_steps: int = 3000
  lr_decay: str = "constant"    # within each BC call: `constant` or `cosine` (`amf.bc.DECAYS`)


class Loop(NamedTuple):
  """The active loop's defaults on the environment (`configs/active_finetune.py`)."""
  pretrain_size: int
  budget: int
  batch_size: int = 1
  stride: int = 1               # score every stride-th state of a trajectory
  num_seeds: int = 10
  eval_episodes: int = 10
  finetune_steps: int = 3000    # per round
  eval_task_batch: int = 1      # tasks evaluated side by side (0: all)
  eval_episode_batch: int = 0   # if > 0, episodes evaluated side by side per run instead
  checkpoint_every: int = 5     # rounds between checkpoints and progress lines


class Testbed(NamedTuple):
  """What the experiments and studies of an environment use unless told otherwise.

  `env_kwargs` are its constructor's settings (list `num_tasks` so a study can change it);
  `study_seeds` the seeds of its NN studies at the paper scale, by their power (0: the loop's);
  `quick_studies` whether studies at the quick scale run on it (a few minutes a process);
  `study_name` its processes' name in a study ("": the environment's); `costly` marks rounds
  that take minutes (studies split or skip their longest processes there); `skip_kernels`
  kernels a 24 GiB machine cannot hold on it; `first_tasks` the finite tasks the
  discretisation study pre-trains on (0: the first half); `transfer_sources` the source tasks
  of its transfer curve (away from the task box's edges); `expert_figure` whether the launcher
  has a figure checking its expert (not for an exact one); `studies` per-study overrides of
  its processes' config at the paper scale.
  """
  learner: Learner
  loop: Loop
  env_kwargs: Mapping = {}
  study_seeds: int = 0
  quick_studies: bool = False
  study_name: str = ""
  costly: bool = False
  skip_kernels: tuple[str, ...] = ()
  first_tasks: int = 0
  transfer_sources: tuple[int, ...] = (0,)
  expert_figure: bool = True
  studies: Mapping[str, Mapping] = {}


class Registration(NamedTuple):
  make: Callable[..., MultiTaskEnv]
  testbed: Testbed


ENVS: dict[str, Registration] = {}


def register(name: str, make: Callable[..., MultiTaskEnv], testbed: Testbed) -> None:
  """Registers environment `name`: its constructor (keyword settings) and its testbed."""
  if name in ENVS and ENVS[name].make is not make:
    raise ValueError(f"Environment {name!r} is registered already (by {ENVS[name].make}).")
  ENVS[name] = Registration(make, testbed)


def make(name: str, **kwargs) -> MultiTaskEnv:
  """Builds environment `name` with keyword settings (e.g. from a config)."""
  return registry.lookup(ENVS, name, "environment").make(**kwargs)


def testbed(name: str) -> Testbed:
  """The testbed of environment `name`; unknown names are refused with the choices."""
  return registry.lookup(ENVS, name, "environment").testbed
