"""Orbax checkpoints of pytrees: whole-object save/restore and step-numbered progress."""
import logging as std_logging
import os
from typing import Any, Optional

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


def restore(path: str, like: Any) -> Any:
  """Restores the pytree saved at `path`, with the structure and shapes of `like`."""
  _quiet_orbax()
  with ocp.StandardCheckpointer() as ckpt:
    return ckpt.restore(os.path.abspath(path), like)


class Progress:
  """Step-numbered checkpoints of a pytree in `directory` (e.g. the active loop's carry).

  `latest(like)` gives `(step, tree)` of the newest checkpoint, or `(0, None)` if none.
  """

  def __init__(self, directory: str, max_to_keep: int = 2):
    _quiet_orbax()
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             enable_async_checkpointing=False))

  def save(self, step: int, tree: Any) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(tree))
    self._manager.wait_until_finished()

  def latest(self, like: Any) -> tuple[int, Optional[Any]]:
    step = self._manager.latest_step()
    if step is None:
      return 0, None
    return step, self._manager.restore(step, args=ocp.args.StandardRestore(like))

  def close(self) -> None:
    self._manager.close()
