"""A sweep killed with SIGKILL at any moment, checkpoint writes included, resumes to the same
bytes as an uninterrupted run (`amf/sweep.py`, `amf/checkpoint.py`).

The two runs are separate processes with the same seed, so equal bytes also show that the same
seed gives the same outputs."""
import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TABLES = ("metrics.csv", "per_task.csv", "allocations.csv", "summary.csv", "paired.csv")


def _start(workdir):
  cmd = [sys.executable, "-m", "experiments.integrator_gp",
         "--config=configs/integrator_gp.py:quick", "--config.num_seeds=2", "--config.ks=(1,3)",
         "--config.budget=4", "--config.checkpoint_every=1", f"--workdir={workdir}"]
  return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _finish(process):
  _, err = process.communicate(timeout=600)
  assert process.returncode == 0, err[-3000:]


def _kill_during_next_write(workdir, seen):
  """Starts the sweep and kills it the moment a new orbax checkpoint is being written."""
  process = _start(workdir)
  while process.poll() is None:
    writing = set(glob.glob(os.path.join(workdir, "checkpoints", "**", "*tmp*"),
                            recursive=True)) - seen
    if writing:
      process.send_signal(signal.SIGKILL)
      seen |= writing
      break
    time.sleep(0.002)
  process.wait()
  return process.returncode


def test_killed_sweeps_resume_to_the_same_bytes(tmp_path):
  reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
  _finish(_start(reference))
  seen = set()
  codes = [_kill_during_next_write(killed, seen) for _ in range(3)]
  # Then at a random moment (seeded, so the test is repeatable).
  process = _start(killed)
  time.sleep(np.random.default_rng(0).uniform(1.0, 8.0))
  process.send_signal(signal.SIGKILL)
  process.wait()
  _finish(_start(killed))
  assert codes == [-signal.SIGKILL] * 3, codes  # each was killed mid-write, not finished
  assert any("pretrained" in path for path in seen)  # the shared pre-training's save too
  for name in TABLES:
    assert ((tmp_path / "killed" / name).read_bytes()
            == (tmp_path / "reference" / name).read_bytes()), name
