"""Tests of orbax checkpoints (`amf/checkpoint.py`): whole-pytree save/restore and step-numbered
progress."""
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import checkpoint
from amf.nn_policy import make_policy


@pytest.fixture(name="pretrained", scope="module")
def _pretrained():
  """Parameters of the MLP policy `bc.pretrain` trains, freshly initialised (to a checkpoint, the
  values do not matter; test_bc.py checks the pre-training)."""
  return (make_policy(2, 2, 2, (32, 32)).init(jax.random.key(1)),)


def test_pretrained_params_checkpoint_round_trip(pretrained, tmp_path):
  params = pretrained[0]
  checkpoint.save(str(tmp_path / "policy"), params)
  chex.assert_trees_all_equal(checkpoint.restore(str(tmp_path / "policy"), params), params)


def test_progress_keeps_the_newest_steps_and_restores_the_latest(tmp_path):
  like = {"w": jnp.zeros(3), "step": jnp.int32(0)}
  progress = checkpoint.Progress(str(tmp_path / "progress"), max_to_keep=2)
  assert progress.latest(like) == (0, None)
  for step in (1, 2, 5):
    progress.save(step, {"w": jnp.full(3, float(step)), "step": jnp.int32(step)})
  step, tree = progress.latest(like)
  assert step == 5
  np.testing.assert_array_equal(tree["w"], [5.0, 5.0, 5.0])
  assert int(tree["step"]) == 5
  progress.close()
  # Only the newest `max_to_keep` steps stay on disk; a new Progress over them resumes at 5.
  assert sorted(p.name for p in (tmp_path / "progress").iterdir()) == ["2", "5"]
  again = checkpoint.Progress(str(tmp_path / "progress"))
  assert again.latest(like)[0] == 5
  again.close()


def damage(step_dir) -> None:
  """Flips the bytes of a checkpoint's data files, as a crash of the disk under it might."""
  import glob
  import os
  for path in glob.glob(os.path.join(step_dir, "**", "d", "*"), recursive=True):
    with open(path, "r+b") as f:
      data = bytearray(f.read())
      f.seek(0)
      f.write(bytes(b ^ 0xFF for b in data))


def test_progress_skips_a_damaged_newest_checkpoint_and_refuses_when_none_restores(
    tmp_path, caplog):
  tree = {"a": jnp.arange(100.0), "b": jnp.ones((5, 5))}
  progress = checkpoint.Progress(str(tmp_path))
  progress.save(1, tree)
  progress.save(2, jax.tree.map(lambda x: x + 1, tree))
  damage(tmp_path / "2")
  step, restored = checkpoint.Progress(str(tmp_path)).latest(tree)
  assert step == 1
  chex.assert_trees_all_equal(restored, tree)
  assert "Skipping the checkpoint of step 2" in caplog.text
  damage(tmp_path / "1")
  with pytest.raises(ValueError, match=r"No checkpoint in .* restores .*--overwrite"):
    checkpoint.Progress(str(tmp_path)).latest(tree)


def test_save_json_failing_mid_write_keeps_the_previous_record(tmp_path):
  path = str(tmp_path / "launch.json")
  checkpoint.save_json(path, {"status": "running", "seconds": 60.0})
  with pytest.raises(TypeError):  # json.dump fails after writing part of the object
    checkpoint.save_json(path, {"status": "done", "seconds": object()})
  with open(path) as f:
    assert json.load(f) == {"status": "running", "seconds": 60.0}
