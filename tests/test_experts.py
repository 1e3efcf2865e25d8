"""The experts experiment (`experiments/experts.py`): config refusals and the script's outputs."""
import ml_collections
import pytest

from experiments import experts


def _config(**overrides):
  config = ml_collections.ConfigDict(dict(env="integrator", env_kwargs={}, seed=0, episodes=2,
                                          continuous_tasks=4, min_success=0.95))
  config.update(overrides)
  return config


@pytest.mark.parametrize("overrides, error, message", [
    (dict(env="reachr"), ValueError, "Unknown environment"),
    (dict(episodes=0), ValueError, "episodes"),
    (dict(min_success=1.5), ValueError, "min_success"),
    (dict(env="reacher", env_kwargs={"radius": 0.5}), ValueError, "reachable"),
    (dict(env_kwargs={"goal": 1.0}), TypeError, "goal"),
])
def test_malformed_expert_configs_are_refused(overrides, error, message):
  with pytest.raises(error, match=message):
    experts.validate(_config(**overrides))


@pytest.mark.slow  # runs the experiment end to end
def test_experts_script_writes_its_outputs(tmp_path):
  # The script is the same for every env; the integrator keeps this test quick.
  rows = experts.run(_config(env_kwargs={"num_tasks": 4}), str(tmp_path))
  assert len(rows) == 4 + 4
  assert {"env", "set", "task", "seed", "return", "success"} <= set(rows[0])
  assert all(row["success"] == 1.0 for row in rows)
  for name in ("metrics.csv", "config.json", "expert_success.png"):
    assert (tmp_path / name).stat().st_size > 0


@pytest.mark.slow  # builds Meta-World on the host
def test_an_environment_with_one_hot_features_gets_a_row_per_task(tmp_path):
  # Task features are a function of one task: a batched call on one-hot features had given one
  # row for the whole finite set.
  rows = experts.run(_config(env="metaworld", env_kwargs={"horizon": 5}), str(tmp_path))
  discrete = [r for r in rows if r["set"] == "discrete"]
  assert [r["task"] for r in discrete] == [0, 1, 2, 3]
  assert [r["feature_0"] for r in discrete] == [1.0, 0.0, 0.0, 0.0]
  assert len(rows) == 4 + 4
