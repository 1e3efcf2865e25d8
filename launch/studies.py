"""A study's processes: where each writes, the command that makes it, and its checked config.

A study (`configs/studies/`) lists environments; each is one process of an experiment script,
or one per entry of its `processes`. Every process writes into
`<workdir>/<study>/<env>[/<process>]/`, and the study's resolved config goes to
`<workdir>/<study>/study.json`, from which the report is rebuilt without the code that ran it.
"""
import importlib
import json
import os
import sys
from typing import NamedTuple

import ml_collections

from amf.arms import canonical


class Process(NamedTuple):
  """One process of a study."""
  study: str
  env: str
  tag: str           # the entry of the environment's `processes`, or "" for a single process
  module: str        # the experiment, e.g. experiments.active_finetune
  config: str        # its --config argument, e.g. configs/active_finetune.py:reacher,quick
  overrides: dict    # dotted config key -> value

  @property
  def path(self) -> str:
    """Its workdir under the launcher's root."""
    return os.path.join(self.study, self.env, self.tag) if self.tag else os.path.join(
        self.study, self.env)


def flatten(tree, prefix: str = "") -> dict:
  """`{"a": {"b": 1}}` -> `{"a.b": 1}`, as the config flags spell nested keys."""
  out = {}
  for key, value in tree.items():
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      out.update(flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def processes(study: ml_collections.ConfigDict) -> list[Process]:
  """Every process of `study`, environment by environment."""
  out = []
  for env, spec in study.envs.items():
    base = flatten(spec.overrides)
    for tag, extra in (spec.processes.items() if spec.processes else [("", {})]):
      out.append(Process(study.name, env, tag, spec.module, spec.config,
                     {**base, **flatten(extra)}))
  return out


def flag_value(value) -> str:
  """A config value as `--config.key=` parses it back: tuples as Python literals, without
  spaces and with double-quoted strings, so a printed command reads as one would type it."""
  if isinstance(value, (tuple, list)):
    items = [json.dumps(v) if isinstance(v, str) else repr(v) for v in value]
    return "(" + ",".join(items) + ("," if len(items) == 1 else "") + ")"
  return str(value)


def command(process: Process, root: str, overwrite: bool = False) -> list[str]:
  """The process's command; its arms are indexed in (and read from) `<root>/arms/`, shared by
  every study of the plan (`amf.arms`)."""
  return ([sys.executable, "-m", process.module, f"--config={process.config}"]
          + [f"--config.{k}={flag_value(v)}" for k, v in process.overrides.items()]
          + [f"--workdir={os.path.join(root, process.path)}",
             f"--arms={os.path.join(root, 'arms')}"]
          + (["--overwrite"] if overwrite else []))


def config_file(spec: str) -> ml_collections.ConfigDict:
  """The config a `--config` argument names (e.g. `configs/active_finetune.py:reacher`), before
  any override: every key a process of it writes, in the order it writes them."""
  path, _, arg = spec.partition(":")
  module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
  return module.get_config(arg) if arg else module.get_config()


def experiment_config(process: Process) -> ml_collections.ConfigDict:
  """The experiment's config as the process will see it: its config file, then the overrides
  (an unknown key or a value of the wrong type is refused here)."""
  config = config_file(process.config)
  config.lock()  # as config_flags does: an override cannot add a key
  try:
    config.update_from_flattened_dict(dict(process.overrides))
  except (KeyError, TypeError, AttributeError) as e:
    raise ValueError(f"{process.path}: bad override of {process.config}: {e}") from e
  return config


def validate(process: Process) -> None:
  """Refuses a bad process before any of the plan starts: its config goes through the
  experiment's own `validate` (names of estimators, kernels, mixes, budgets...)."""
  config = experiment_config(process)
  try:
    importlib.import_module(process.module).validate(config)
  except ValueError as e:
    raise ValueError(f"{process.path}: {e}") from e


def check(study: ml_collections.ConfigDict) -> None:
  """Refuses a study whose reference or gap names no arm it runs."""
  unknown = set(study.reference) - {"method", "variant", "process"}
  if not study.reference or unknown:
    raise ValueError(f"{study.name}: the reference must set some of method, variant, process; "
                     f"got {dict(study.reference)}.")
  tags = {tag for spec in study.envs.values() for tag in (spec.processes or {})}
  if "process" in study.reference and study.reference["process"] not in tags:
    raise ValueError(f"{study.name}: reference process {study.reference['process']!r} is none of "
                     f"{sorted(tags)}.")
  if study.gap and len(study.gap) != 2:
    raise ValueError(f"{study.name}: gap must name two methods, got {study.gap}.")


def _stored(workdir: str, name: str):
  try:
    with open(os.path.join(workdir, name)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def stored_config(workdir: str):
  """The `config.json` a process wrote in `workdir` (None if there is none to read)."""
  return _stored(workdir, "config.json")


def launch_record(workdir: str) -> dict:
  """The launcher's `launch.json` in `workdir`: its status (running, done, failed), wall and
  CPU seconds ({} where the launcher never ran it)."""
  return _stored(workdir, "launch.json") or {}


def holds(workdir: str, config: dict) -> bool:
  """Whether the process in `workdir` ran with `config` (its resolved config, as JSON): equal
  but for settings that change no number (`amf.arms.canonical`). A setting added to the
  configs since is in `config` and not in the record until `launch.migrate` writes it there."""
  stored = stored_config(workdir)
  return stored is not None and canonical(stored) == canonical(config)


def write(study: ml_collections.ConfigDict, root: str) -> str:
  """Writes `<root>/<study>/study.json` (the study as run) and returns its path."""
  path = os.path.join(root, study.name, "study.json")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write(study.to_json(indent=2))
  return path


def read(root: str, name: str) -> dict:
  with open(os.path.join(root, name, "study.json")) as f:
    return json.load(f)
