"""The AMF-NN experiment end to end on a tiny integrator setting: outputs, resumption, refusals."""
import os
import shutil

import numpy as np
import pytest

from amf import forgetting, metrics, sweep
from amf.active import LoopConfig
from configs import active_finetune as config_lib
from experiments import active_finetune


def _tiny(**overrides):
  c = config_lib.get_config("integrator,quick")
  c.update(dict(num_seeds=2, mixes=("subset",), budget=2, pretrain_size=4, pretrain_steps=100,
                finetune_steps=20, hidden=(16,), eval_episodes=2, methods=("amf", "uniform"),
                checkpoint_every=1, kernels=("last_layer",)))
  c.update(overrides)
  return c


@pytest.mark.slow  # runs the experiment end to end
def test_runs_writes_outputs_and_resumes_a_killed_run(tmp_path):
  workdir = str(tmp_path / "run")
  rows = active_finetune.run(_tiny(), workdir)
  # methods x mixes x seeds x (rounds + 1)
  assert len(rows) == 2 * 1 * 2 * 3
  assert {r["method"] for r in rows} == {"amf", "uniform"}
  assert {r["variant"] for r in rows} == {"subset(k=6)"}
  for name in ("metrics.csv", "per_task.csv", "allocations.csv", "summary.csv", "stability.csv",
               "config.json", "curves_success.png", "curves_return.png", "bars_success.png",
               "allocations.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  # "Kill" AMF after round 1: drop its round-2 checkpoint; the rerun redoes round 2 only and
  # re-uses the pre-trained runs, so its results are the same.
  shutil.rmtree(os.path.join(workdir, "checkpoints", "amf", "2"))
  again = active_finetune.run(_tiny(), workdir)
  assert again == rows
  assert metrics.read_csv(os.path.join(workdir, "metrics.csv")) == rows


@pytest.mark.slow  # runs the experiment end to end
def test_kernel_and_estimator_variants_are_methods_of_one_program(tmp_path):
  c = _tiny(methods=("amf",), num_seeds=1, budget=1, kernels=("last_layer", "rbf"),
            estimators=("importance", "uniform"))
  rows = active_finetune.run(c, str(tmp_path))
  assert {r["method"] for r in rows} == {"amf/last_layer/importance", "amf/last_layer/uniform",
                                         "amf/rbf/importance", "amf/rbf/uniform"}


@pytest.mark.parametrize("overrides,match", [
    (dict(kernels=("ntk", "gradient")), "network kernel 'gradient'"),
    (dict(kernels=()), "at least one kernel"),
    (dict(estimators=("importance", "learnt")), "occupancy estimator 'learnt'"),
    (dict(methods=("amf", "random")), "selection strategy 'random'"),
    (dict(forgetting="ewc"), "forgetting mitigation 'ewc'"),
    (dict(mixes=("subset", "zipf")), "Unknown task mix 'zipf'"),
    (dict(subset_k=13), "subset_k"),
    (dict(mixes=("subset:13",)), r"subset k must be in 1..12"),
    (dict(mixes=("uniform:2",)), "takes no value"),
    (dict(mixes=("skewed:strong",)), "skewed:S a number"),
    (dict(mixes=("subset", "subset:6")), "same mix twice"),
    (dict(mixes=()), "at least one pre-training mix"),
    (dict(budget=3, batch_size=2), "whole number of rounds"),
    (dict(noise=0.0), "must be positive"),
    (dict(finetune_steps=0), "at least 1"),
    (dict(learning_rate=0.0), "learning_rate must be positive"),
    (dict(demo_noise=-0.1), "demo_noise must be >= 0"),
    (dict(target_tasks=(3, 12)), "beyond 12 tasks"),
    (dict(max_runs_per_call=-1), "max_runs_per_call must be >= 0"),
])
def test_bad_configs_are_refused_before_any_work(tmp_path, overrides, match):
  workdir = tmp_path / "refused"
  with pytest.raises(ValueError, match=match):
    active_finetune.run(_tiny(**overrides), str(workdir))
  assert not workdir.exists()


def test_mix_specs_with_values_are_variants_of_one_batch_of_runs():
  config = _tiny(mixes=("uniform", "skewed", "skewed:2", "subset", "subset:3"))
  env, _ = active_finetune.validate(config)
  runs = active_finetune.runs(config, env)
  assert runs.variants == [label for label in ("uniform", "skewed(1)", "skewed(2)", "subset(k=6)",
                                               "subset(k=3)") for _ in range(2)]
  assert list(runs.seeds) == [0, 1] * 5
  weights = np.asarray(runs.weights)[::2]
  np.testing.assert_allclose(weights[0], 1 / 12)
  np.testing.assert_allclose(weights[2] / weights[2, 0], 1 / np.arange(1, 13) ** 2, rtol=1e-6)
  assert weights[1, 1] / weights[1, 0] == pytest.approx(0.5)
  assert (weights[3] > 0).sum() == 6 and (weights[4] > 0).sum() == 3


@pytest.mark.parametrize("mode,cls,option,value", [
    ("none", forgetting.Plain, "replay", False), ("replay", forgetting.Plain, "replay", True),
    ("adaptive_prior", forgetting.AdaptivePrior, "penalty", 0.001),
    ("isolation", forgetting.Isolation, "num_cells", 4)])
def test_every_forgetting_mode_builds_from_the_default_options(mode, cls, option, value):
  config = _tiny(forgetting=mode)
  env, _ = active_finetune.validate(config)
  mitigation = active_finetune.learner(config, env).mitigation
  assert type(mitigation) is cls and getattr(mitigation, option) == value


def test_part_options_reach_the_parts_from_the_config():
  config = _tiny(forgetting="isolation")
  config.forgetting_options.isolation.num_cells = 3
  config.kernel_hyper.k = 7
  env, _ = active_finetune.validate(config)
  nn = active_finetune.learner(config, env)
  assert nn.mitigation.num_cells == 3 and nn.hyper.k == 7
  config.critic.steps = 11
  assert LoopConfig.from_config(config, ("amf",)).critic.steps == 11


def test_config_names_are_checked():
  with pytest.raises(ValueError, match="Unknown env 'ant'"):
    config_lib.get_config("ant")
  with pytest.raises(ValueError, match="Unknown scale 'huge'"):
    config_lib.get_config("reacher,huge")


@pytest.mark.slow  # runs the experiment end to end
def test_a_diverging_run_is_named_and_no_rows_are_written(tmp_path):
  # A learning rate this large leaves huge weights after pre-training and NaN once fine-tuned.
  with pytest.raises(sweep.DivergedError, match=r"amf, subset\(k=6\), seed 0: round 1"):
    active_finetune.run(_tiny(learning_rate=1e12), str(tmp_path))
  assert not (tmp_path / "metrics.csv").exists()
