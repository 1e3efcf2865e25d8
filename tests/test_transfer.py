"""The transfer-width experiment end to end on a tiny integrator setting."""
import os

import numpy as np
import pytest

from amf import metrics
from configs import transfer as config_lib
from experiments import transfer


def _tiny(**overrides):
  c = config_lib.get_config("integrator,quick")
  c.update(dict(num_seeds=2, n=2, base=1, sources=(3,), offsets=(0.0, 0.02, 0.25),
                hidden=(32, 32), pretrain_steps=300, eval_episodes=2))
  c.update(overrides)
  return c


@pytest.mark.slow  # runs the experiment end to end
def test_transfer_curve_outputs_gain_and_width(tmp_path):
  workdir = str(tmp_path / "run")
  rows = transfer.run(_tiny(), workdir)
  # 5 offsets (both signs, one zero) x 2 arms x 2 seeds, along the integrator's one parameter.
  assert len(rows) == 5 * 2 * 2
  assert sorted({r["unit_offset"] for r in rows}) == [-0.25, -0.02, 0.0, 0.02, 0.25]
  for name in ("transfer.csv", "transfer_summary.csv", "config.json", "transfer.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  table = metrics.read_csv(os.path.join(workdir, "transfer_summary.csv"))
  returns = {(r["extra"], r["unit_offset"]): [] for r in rows}
  for r in rows:
    returns[(r["extra"], r["unit_offset"])].append(r["return"])
  # The source's own demonstrations bring its goal closer than its neighbours' alone.
  assert np.mean(returns[(2, 0.0)]) > np.mean(returns[(0, 0.0)])
  width = transfer.widths(table)[(3, 0)]
  assert width in (0.0, 0.02, 0.25)
  # Resumes from its checkpoints with the same rows.
  assert transfer.run(_tiny(), workdir) == rows


@pytest.mark.parametrize("overrides,match", [
    (dict(sources=(12,)), "sources must be task ids"),
    (dict(n=0), "Need n >= 1"),
    (dict(offsets=(-0.1,)), "offsets >= 0"),
])
def test_bad_transfer_configs_are_refused(tmp_path, overrides, match):
  with pytest.raises(ValueError, match=match):
    transfer.run(_tiny(**overrides), str(tmp_path / "refused"))
