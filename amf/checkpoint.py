"""Orbax checkpoints of pytrees: whole-object save/restore and step-numbered progress; JSON
records written whole or not at all."""
import json
import logging as std_logging
import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from absl import logging


def _quiet_orbax() -> None:
  """Drops orbax's per-save INFO lines from the absl log, keeping its warnings and errors."""
  handler = logging.get_absl_handler()
  if not any(getattr(f, "_amf_orbax", False) for f in handler.filters):
    drop = lambda record: record.levelno > std_logging.INFO or "orbax" not in record.pathname
    drop._amf_orbax = True
    handler.addFilter(drop)


def save(path: str, tree: Any) -> None:
  """Saves `tree` (a pytree of arrays) at `path`, replacing what is there."""
  _quiet_orbax()
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(os.path.abspath(path), tree, force=True)


def save_json(path: str, obj: Any, **options) -> None:
  """Writes `obj` as JSON at `path` (`json.dump` options), atomically: a process killed
  mid-write leaves the previous file, never half of one."""
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, **options)
  os.replace(path + ".tmp", path)


def saved_shapes(path: str) -> list[tuple[int, ...]]:
  """The shapes of the arrays saved at `path` (from its metadata; nothing is read)."""
  _quiet_orbax()
  with ocp.StandardCheckpointer() as ckpt:
    return [tuple(x.shape) for x in jax.tree.leaves(
        ckpt.metadata(os.path.abspath(path)).item_metadata.tree)]


def restore(path: str, like: Any) -> Any:
  """Restores the pytree saved at `path`, with the structure and shapes of `like`."""
  _quiet_orbax()
  try:
    with ocp.StandardCheckpointer() as ckpt:
      return ckpt.restore(os.path.abspath(path), like)
  except ValueError as e:
    return _restore_older(path, like, e)


def _restore_older(path: str, like: Any, error: ValueError) -> Any:
  """A checkpoint saved before a field that `like` holds as None existed (`Dataset.steps`):
  orbax's strict restore refuses its tree (the field is missing on disk). When its arrays are
  exactly `like`'s (as many, of the same shapes), they are restored into `like`'s structure;
  otherwise `error` is raised."""
  if "tree structures do not match" not in str(error):
    raise error
  try:
    same = sorted(saved_shapes(path)) == sorted(tuple(x.shape) for x in jax.tree.leaves(like))
  except Exception:  # pylint: disable=broad-except  (no readable metadata: the first error)
    same = False
  if not same:
    raise error
  with ocp.PyTreeCheckpointer() as ckpt:
    return ckpt.restore(os.path.abspath(path), args=ocp.args.PyTreeRestore(
        item=like, restore_args=ocp.checkpoint_utils.construct_restore_args(like),
        partial_restore=True))


class Progress:
  """Step-numbered checkpoints of a pytree in `directory` (e.g. the active loop's carry).

  `latest(like)` gives `(step, tree)` of the newest checkpoint that restores, or `(0, None)`
  if there is none. A checkpoint that does not restore (its files damaged, e.g. by a crash
  of the disk under it) is skipped with a warning naming it and why, and an older one is
  used; when checkpoints exist and none restores, a ValueError says so.
  """

  def __init__(self, directory: str, max_to_keep: Optional[int] = 2):  # None: keep every one
    _quiet_orbax()
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             enable_async_checkpointing=False))

  def save(self, step: int, tree: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(tree))
    self._manager.wait_until_finished()

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def restore(self, step: int, like: Any) -> Any:
    """The checkpoint of `step`, with the structure and shapes of `like`."""
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(like))
    except ValueError as e:
      return _restore_older(os.path.join(self._manager.directory, str(step), "default"), like, e)

  def latest(self, like: Any) -> tuple[int, Optional[Any]]:
    failures = []
    for step in reversed(self.steps()):
      try:
        return step, self.restore(step, like)
      except Exception as e:  # pylint: disable=broad-except  (orbax raises many types)
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        logging.warning("Skipping the checkpoint of step %d in %s, which does not restore "
                        "(%s).", step, self._manager.directory, reason)
        failures.append(f"step {step}: {reason}")
    if failures:
      raise ValueError(f"No checkpoint in {self._manager.directory} restores "
                       f"({'; '.join(failures)}); rerun with --overwrite to start afresh.")
    return 0, None

  def close(self) -> None:
    self._manager.close()
