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
  assert set(transfer.widths(table)) == {(3, 0)}
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


def test_the_transfer_width_is_the_farthest_offset_keeping_half_the_gain():
  gains = {0.0: 1.0, 0.02: 0.6, -0.02: 0.4, 0.06: 0.55, -0.06: 0.2, 0.25: 0.1, -0.25: 0.7}
  table = [dict(source=1, param=0, unit_offset=o, gain_mean=g) for o, g in gains.items()]
  # Another source whose gain falls below half at once, and one that never gains.
  table += [dict(source=2, param=0, unit_offset=o, gain_mean=1.0 if o == 0 else 0.4)
            for o in gains]
  table += [dict(source=3, param=1, unit_offset=o, gain_mean=0.0) for o in gains]
  # Half of the source's gain still at -0.25 (0.7 >= 0.5), though not in between.
  assert transfer.widths(table) == {(1, 0): 0.25, (2, 0): 0.0, (3, 1): 0.25}
