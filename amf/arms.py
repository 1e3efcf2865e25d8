"""No arm run twice in a plan: an index of the method arms its processes computed.

An *arm* is one method of one process on all its runs (mixes x seeds): its strategy, the
estimator, kernel and proposal it scores with (scored strategies only), and every other
config value. Many studies share arms (`uniform` under `subset`, AMF with the reference kernel
and estimator), and each arm's result depends on nothing else of its process: its runs are
advanced as their own vmapped call with their own keys (`sweep.batched_advance`). The index,
`<store>/<key>.json`, points at the process whose tables hold the arm's rows; a later process
with the same arm reads them (relabelled with its own method label) instead of running it.
"""
import hashlib
import json
import os
from typing import Optional

from amf import checkpoint, metrics, selection

# Config values that choose which arms a process runs rather than what an arm computes.
ARM_SET = ("methods", "kernels", "estimators", "proposals")
# Config values that change how a process is checkpointed, and no number: a process resumed or
# skipped under other values of them is the same process. (`max_runs_per_call` is not one: how
# many runs share a call changes the rounding of XLA's CPU reductions from 32 runs on, so a
# run's numbers depend on it; docs/studies.md, "What a run's numbers depend on".)
UNCOMPUTED = ("checkpoint_every",)
TABLES = ("metrics", "per_task", "allocations")
# Config keys added after processes ran, with the value that computes what those processes
# computed: a config holding that value is the same config as one without the key, so adding a
# setting neither reruns a finished process nor re-keys its arms.
NEUTRAL = {"eval_episode_batch": 0, "head": "fixed_std", "max_runs_per_call": 0}


def canonical(config: dict) -> dict:
  """`config` without its `UNCOMPUTED` keys and the `NEUTRAL` keys that hold their neutral
  value: two configs that compute the same numbers have the same canonical form."""
  return {k: v for k, v in config.items()
          if k not in UNCOMPUTED and (k not in NEUTRAL or v != NEUTRAL[k])}


def settings(config: dict) -> dict:
  """The config values an arm's result depends on besides its own (all but `ARM_SET`)."""
  return {k: v for k, v in canonical(config).items() if k not in ARM_SET}


def key(process_settings: dict, strategy: str, estimator: str, kernel: str,
        proposal: str) -> tuple[str, dict]:
  """`(key, identity)` of one arm of a process whose `settings` are `process_settings`."""
  identity = dict(process_settings)
  scored = strategy in selection.SCORED
  identity["arm"] = {"strategy": strategy, "estimator": estimator if scored else None,
                     "kernel": kernel if scored else None,
                     "proposal": proposal if scored else None}
  text = json.dumps(identity, sort_keys=True, default=list)
  return hashlib.sha256(text.encode()).hexdigest()[:20], identity


def locate(store: str, arm_key: str) -> Optional[tuple[str, str]]:
  """`(workdir, method label)` of the finished process of the plan whose tables hold the arm, if
  the index names one that still holds this arm's settings (not a later config's outputs) and
  has written its tables; None otherwise."""
  try:
    with open(os.path.join(store, f"{arm_key}.json")) as f:
      entry = json.load(f)
    workdir = os.path.normpath(os.path.join(store, entry["workdir"]))
    with open(os.path.join(workdir, "config.json")) as f:
      held = settings(json.load(f))
  except (OSError, ValueError):
    return None
  wanted = {k: v for k, v in entry["identity"].items() if k != "arm"}
  if json.dumps(held, sort_keys=True) != json.dumps(wanted, sort_keys=True) or not all(
      os.path.exists(os.path.join(workdir, f"{t}.csv")) for t in TABLES):
    return None
  return workdir, entry["method"]


def find(store: str, arm_key: str, label: str) -> Optional[dict]:
  """The arm's tables `{name: rows}` with `method` set to `label`, if `locate` finds them
  (and they hold its rows); None otherwise."""
  found = locate(store, arm_key)
  if found is None:
    return None
  workdir, method = found
  tables = {t: [dict(r, method=label) for r in metrics.read_csv(
      os.path.join(workdir, f"{t}.csv")) if r["method"] == method] for t in TABLES}
  return tables if tables["metrics"] else None


def record(store: str, arm_key: str, identity: dict, workdir: str, label: str) -> None:
  """Indexes the arm as computed by the process in `workdir` under `label`."""
  os.makedirs(store, exist_ok=True)
  entry = {"workdir": os.path.relpath(workdir, store), "method": label, "identity": identity}
  path = os.path.join(store, f"{arm_key}.json")
  checkpoint.save_json(path, entry, indent=1, sort_keys=True, default=list)
