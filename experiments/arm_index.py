"""A plan's arm index in a folder (`amf.arms.Store`): `<root>/<key>.json` names the process
workdir (relative to the root) and method label whose tables hold the arm's rows."""
import dataclasses
import json
import os
from typing import Optional

from amf import arms, checkpoint, metrics


@dataclasses.dataclass(frozen=True)
class Folder:
  """The index at `root`, as seen by the process writing to `workdir`."""
  root: str
  workdir: str = ""

  def __str__(self) -> str:
    return self.root

  def locate(self, arm_key: str) -> Optional[tuple[str, str]]:
    """`(workdir, method label)` of the finished process whose tables hold the arm, if the
    index names one that still holds this arm's settings (not a later config's outputs) and
    has written its tables; None otherwise."""
    try:
      with open(os.path.join(self.root, f"{arm_key}.json")) as f:
        entry = json.load(f)
      workdir = os.path.normpath(os.path.join(self.root, entry["workdir"]))
      with open(os.path.join(workdir, "config.json")) as f:
        held = arms.settings(json.load(f))
    except (OSError, ValueError):
      return None
    wanted = {k: v for k, v in entry["identity"].items() if k != "arm"}
    if json.dumps(held, sort_keys=True) != json.dumps(wanted, sort_keys=True) or not all(
        os.path.exists(os.path.join(workdir, f"{t}.csv")) for t in arms.TABLES):
      return None
    return workdir, entry["method"]

  def find(self, arm_key: str, label: str) -> Optional[dict]:
    """The arm's tables `{name: rows}` with `method` set to `label`, if `locate` finds them
    (and they hold its rows); None otherwise."""
    found = self.locate(arm_key)
    if found is None:
      return None
    workdir, method = found
    tables = {t: [dict(r, method=label) for r in metrics.read_csv(
        os.path.join(workdir, f"{t}.csv")) if r["method"] == method] for t in arms.TABLES}
    return tables if tables["metrics"] else None

  def record(self, arm_key: str, identity: dict, label: str) -> None:
    """Indexes the arm as computed by the process in `workdir` under `label`."""
    os.makedirs(self.root, exist_ok=True)
    entry = {"workdir": os.path.relpath(self.workdir, self.root), "method": label,
             "identity": identity}
    checkpoint.save_json(os.path.join(self.root, f"{arm_key}.json"), entry, indent=1,
                         sort_keys=True, default=list)


def folder(root: str, workdir: str) -> Optional[Folder]:
  """The index at `root` for the process in `workdir`; None without a root (`--arms=""`)."""
  return Folder(root, workdir) if root else None
