"""No arm run twice in a plan: what identifies a method arm, and where arms are found.

An *arm* is one method of one process on all its runs (mixes x seeds): its strategy, the
estimator, kernel and proposal it scores with (scored strategies only), and every other
config value. Many studies share arms (`uniform` under `subset`, AMF with the reference kernel
and estimator), and each arm's result depends on nothing else of its process: its runs are
advanced as their own vmapped call with their own keys (`sweep.batched_advance`). A `Store`
maps an arm's `key` to the tables of the process that computed it; a later process with the
same arm reads them (relabelled with its own method label) instead of running it.
"""
import hashlib
import json
from typing import Optional, Protocol

from amf import selection

# Config values that choose which arms a process runs rather than what an arm computes.
ARM_SET = ("methods", "kernels", "estimators", "proposals")
# Config values that change how a process is checkpointed, and no number: a process resumed or
# skipped under other values of them is the same process. (`max_runs_per_call` is not one: how
# many runs share a call changes the rounding of XLA's CPU reductions from 32 runs on, so a
# run's numbers depend on it; docs/studies.md, "What a run's numbers depend on".)
UNCOMPUTED = ("checkpoint_every",)
TABLES = ("metrics", "per_task", "allocations")


def canonical(config: dict) -> dict:
  """`config` without its `UNCOMPUTED` keys: two configs that compute the same numbers have the
  same canonical form. Every other key counts, present or absent: a setting added to the
  configs after processes ran is written into their records, at the value that computes what
  they computed, by `python -m launch.migrate`."""
  return {k: v for k, v in config.items() if k not in UNCOMPUTED}


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
  return digest(identity), identity


def digest(identity: dict) -> str:
  """The key of the arm whose identity (`key`'s second value) is `identity`."""
  text = json.dumps(identity, sort_keys=True, default=list)
  return hashlib.sha256(text.encode()).hexdigest()[:20]


class Store(Protocol):
  """Where a plan's processes find the arms computed before them (`experiments.arm_index`
  keeps one in a folder)."""

  def find(self, arm_key: str, label: str) -> Optional[dict]:
    """The arm's tables `{name: rows}` with `method` set to `label`; None if not computed."""

  def record(self, arm_key: str, identity: dict, label: str) -> None:
    """Notes that this process computed the arm, under `label`."""
