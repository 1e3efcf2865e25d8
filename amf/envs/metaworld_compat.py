"""Makes Meta-World 3.1.1 run on the project's MuJoCo 4.

Meta-World 3.1.1 (its latest release) pins `mujoco==3.3.0`, while brax's MJX needs a newer
MuJoCo, so it is installed with `--no-deps` (Makefile). One incompatibility follows: at
construction `SawyerMocapBase.reset_mocap_welds` writes its 11 weld values (anchor, relative
position, relative quaternion, torque scale) into each weld's `eq_data` row, which MuJoCo 4
widened to 12 entries (`mjNEQDATA`), so numpy refuses the assignment. `apply()` writes those
11 into the row's first 11 entries, their place in both versions, and leaves MuJoCo 4's added
entry at the model's value (on MuJoCo 3 the 11 are the whole row, as Meta-World wrote it).
`import_metaworld()` is the one place to import Meta-World from; patching is idempotent.
"""
import numpy as np

_INSTALL = ("pip install --no-deps metaworld==3.1.1 gymnasium==1.4.0 "
            "farama-notifications==0.0.6 imageio==2.38.2 (as `make install` does)")
# What Meta-World 3.1.1 writes into each mocap weld (sawyer_xyz_env.py).
_WELD = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0])


def _reset_mocap_welds(self) -> None:
  import mujoco  # pylint: disable=import-outside-toplevel
  if self.model.nmocap > 0 and self.model.eq_data is not None:
    for i in range(self.model.eq_data.shape[0]):
      if self.model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:
        self.model.eq_data[i, :_WELD.size] = _WELD


def import_metaworld():
  """Meta-World's module, patched for MuJoCo 4; one line naming what to install if absent."""
  try:
    import metaworld  # pylint: disable=import-outside-toplevel
    from metaworld import sawyer_xyz_env  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError(f"Meta-World is missing or incomplete ({e}): {_INSTALL}.") from None
  version = getattr(metaworld, "__version__", None) or _installed_version()
  if version != "3.1.1":
    raise ImportError(f"Meta-World {version} is installed, this project needs 3.1.1: "
                      f"{_INSTALL}.")
  apply(sawyer_xyz_env.SawyerMocapBase)
  return metaworld


def _installed_version():
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  return metadata.version("metaworld")


def apply(base) -> None:
  """Patches `base.reset_mocap_welds` (Meta-World's `SawyerMocapBase`); idempotent."""
  base.reset_mocap_welds = _reset_mocap_welds
