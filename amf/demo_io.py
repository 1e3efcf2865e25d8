"""Demonstrations on disk: `.npz` (one file of stacked episodes, or a directory of one-episode
files) and robomimic-style HDF5, read into an `amf.data.Dataset`.

HDF5 (`.hdf5` / `.h5`, read with h5py): one group per episode under `data/`, `data/demo_<i>`,
taken in the order of `i`, each with
- `obs`: a dataset (T, O), or a group of datasets (T, ...) (robomimic's observation keys),
  flattened per step and concatenated in the order of their names;
- `actions`: a dataset (T, A);
- the task parameters `task` (P,): a dataset or an attribute of the episode's group; optional
  `task_id` (an attribute: the task's row in the finite set; -1 or absent: off the set).

Episodes may differ in length: they are padded at their end to the longest (or to the policy's
horizon, when given), and `Dataset.steps` marks the recorded steps; an episode longer than the
horizon is refused by name. Every file that does not read is refused with a one-line
ValueError naming it.
"""
import pathlib
import re
from typing import Optional

import numpy as np

from amf import data as data_lib

FIELDS = ("obs", "actions", "task", "task_id", "mask", "steps")
HDF5_SUFFIXES = (".hdf5", ".h5")


def save_demos(path: str, demos: data_lib.Dataset) -> None:
  """Writes demonstrations as one `.npz` of stacked episodes (the fields of `Dataset`; `steps`
  only when it is set)."""
  np.savez(path, **{k: np.asarray(v) for k, v in demos._asdict().items() if v is not None})


def load_demos(path: str, horizon: Optional[int] = None) -> data_lib.Dataset:
  """Demonstrations from one `.npz` of stacked episodes (`obs` (M, T, O), `actions`
  (M, T, A), `task` (M, P); optional `task_id`, `mask`, `steps` (M, T)), a directory of
  one-episode `.npz` files (`obs` (T, O), `actions` (T, A), `task` (P,)) or a robomimic-style
  HDF5 file. Episodes of different lengths are padded to the longest, or to `horizon` (the
  policy's; a longer episode is refused naming its file and episode)."""
  p = pathlib.Path(path)
  if p.is_dir():
    files = sorted(p.glob("*.npz"))
    if not files:
      raise ValueError(f"demonstrations: no .npz episodes in {p}.")
    stacked = _stack({str(f): _fields(_load_npz(f), f, FIELDS[:3]) for f in files}, p, horizon)
  elif p.is_file() and p.suffix in HDF5_SUFFIXES:
    stacked = _load_hdf5(p, horizon)
  elif p.is_file():
    stacked = _fields(_load_npz(p), p, FIELDS, optional=("task_id", "mask", "steps"))
    if horizon is not None and np.ndim(stacked["obs"]) > 1:
      steps = stacked.get("steps")
      lengths = (np.sum(steps, -1) if np.ndim(steps) == 2 else
                 np.full(len(stacked["obs"]), np.shape(stacked["obs"])[1]))
      _refuse_longer([f"{p} episode {i}" for i in range(len(lengths))], lengths, horizon)
  else:
    raise ValueError(f"demonstrations: {p} is neither a .npz or HDF5 file nor a directory.")
  m = len(stacked["obs"])
  try:
    return data_lib.Dataset(
        np.asarray(stacked["obs"], np.float32), np.asarray(stacked["actions"], np.float32),
        np.asarray(stacked["task"], np.float32),
        np.asarray(stacked.get("task_id", np.full(m, -1)), np.int32),
        np.asarray(stacked.get("mask", np.ones(m)), bool),
        np.asarray(stacked["steps"], bool) if "steps" in stacked else None)
  except (TypeError, ValueError) as e:
    raise ValueError(f"demonstrations: {p} holds arrays that are not numbers ({e}).") from None


def _refuse_longer(names, lengths, horizon: Optional[int]) -> None:
  longer = [i for i, n in enumerate(lengths) if horizon is not None and n > horizon]
  if longer:
    i = longer[0]
    raise ValueError(f"demonstrations: {names[i]} has {lengths[i]} steps, more than the "
                     f"policy's horizon {horizon} ({len(longer)} such episodes).")


def _stack(episodes: dict[str, dict], where, horizon: Optional[int]) -> dict:
  """One-episode fields (by episode name) stacked; episodes shorter than the longest, or than
  `horizon` when given, are padded at their end with zeros, and `steps` marks the recorded
  steps (only when some episode is padded)."""
  for name, e in episodes.items():
    if np.ndim(e["obs"]) == 0 or np.ndim(e["actions"]) == 0:
      raise ValueError(f"demonstrations: {name} holds obs and actions without a steps axis.")
    if len(e["actions"]) != len(e["obs"]):
      raise ValueError(f"demonstrations: {name} has {len(e['obs'])} observations but "
                       f"{len(e['actions'])} actions.")
  lengths = [len(e["obs"]) for e in episodes.values()]
  _refuse_longer(list(episodes), lengths, horizon)
  size = max(lengths) if horizon is None else horizon
  try:
    stacked = {k: np.stack([_padded(e[k], size) if k in ("obs", "actions") else e[k]
                            for e in episodes.values()]) for k in next(iter(episodes.values()))}
  except ValueError as e:
    raise ValueError(f"demonstrations: the episodes in {where} differ in shape ({e}).") from None
  if min(lengths) < size:
    stacked["steps"] = np.arange(size) < np.array(lengths)[:, None]
  return stacked


def _padded(x: np.ndarray, size: int) -> np.ndarray:
  """`x` (T, ...) with `size - T` zero steps appended."""
  x = np.asarray(x)
  if len(x) == size:
    return x
  return np.concatenate([x, np.zeros((size - len(x),) + x.shape[1:], x.dtype)])


def _load_npz(path: pathlib.Path) -> dict:
  try:
    with np.load(path, allow_pickle=False) as npz:
      return {k: npz[k] for k in npz.files}
  except Exception as e:  # pylint: disable=broad-except  (zip, pickle and format errors)
    raise ValueError(f"demonstrations: cannot read {path} as a .npz of arrays "
                     f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}).") from None


def _fields(arrays: dict, path, names, optional=()) -> dict:
  missing = [n for n in names if n not in arrays and n not in optional]
  if missing:
    raise ValueError(f"demonstrations: {path} lacks {missing} (has {sorted(arrays)}).")
  return {n: arrays[n] for n in names if n in arrays}


def _load_hdf5(path: pathlib.Path, horizon: Optional[int]) -> dict:
  import h5py
  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise ValueError(f"demonstrations: cannot read {path} as HDF5 ({e}).") from None
  with f:
    if not isinstance(f.get("data"), h5py.Group):
      raise ValueError(f"demonstrations: {path} has no group data/ (robomimic's layout: "
                       "data/demo_0/obs, data/demo_0/actions, ...).")
    names = sorted((n for n in f["data"] if re.fullmatch(r"demo_\d+", n)),
                   key=lambda n: int(n[5:]))
    if not names:
      raise ValueError(f"demonstrations: {path} has no data/demo_<i> episodes.")
    return _stack({f"{path}:data/{n}": _hdf5_episode(f["data"][n], f"{path}:data/{n}")
                   for n in names}, path, horizon)


def _hdf5_episode(group, where: str) -> dict:
  import h5py
  missing = [k for k in ("obs", "actions") if k not in group]
  if "task" not in group and "task" not in group.attrs:
    missing.append("task (dataset or attribute)")
  if missing:
    raise ValueError(f"demonstrations: {where} lacks {missing}.")
  obs = group["obs"]
  if isinstance(obs, h5py.Group):  # robomimic: one dataset per observation key
    parts = [np.asarray(obs[k]) for k in sorted(obs)]
    obs = np.concatenate([x.reshape(len(x), -1) for x in parts], -1)
  task = group["task"][()] if "task" in group else group.attrs["task"]
  return dict(obs=np.asarray(obs), actions=np.asarray(group["actions"]),
              task=np.atleast_1d(np.asarray(task)),
              task_id=np.asarray(group.attrs.get("task_id", -1)))
