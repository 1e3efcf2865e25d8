"""`amf.suggest`: the loop's own selection on a lab's policy and data, its files and command.

Equivalence: a policy and demonstrations written by the active loop after a round, asked
through `suggest` (in-process and through the command), give exactly the tasks the loop asked
for in the next round — on the integrator (finite set and continuous space) and on reacher.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data, envs, nn_learner, suggest
from amf.active import LoopConfig, make_loop, round_streams
from configs import active_finetune

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(env_name, **overrides):
  c = active_finetune.get_config(f"{env_name},quick")
  c.update({**dict(pretrain_steps=200, finetune_steps=100, hidden=(16, 16),
                   kernels=("loss_gradient", "last_layer")), **overrides})
  return c


def _loop_two_rounds(env_name, key=0, **loop_settings):
  """The loop's carry after one round (a policy and data a lab would have) and after two."""
  c = _config(env_name)
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(c, env)
  settings = dict(strategies=("amf",), estimators=("importance",), pretrain_size=4, budget=2,
                  batch_size=1, occupancy_samples=2, eval_episodes=2, stride=2)
  settings.update(loop_settings)
  loop = make_loop(env, learner, LoopConfig(**settings))
  first = jax.jit(loop.advance, static_argnums=1)(
      jax.jit(loop.init)(jax.random.PRNGKey(key), data.mix_weights("subset", env.num_tasks, k=2)),
      1)
  second = jax.jit(loop.advance, static_argnums=1)(first, 1)
  return c, env, learner, first, second


@pytest.fixture(scope="module")
def integrator_round():
  return _loop_two_rounds("integrator")


def _question(**kw):
  return suggest.Question(**{**dict(estimator="importance", occupancy_samples=2, stride=2), **kw})


@pytest.mark.slow  # compiles a loop and the suggestion
def test_suggest_asks_for_what_the_loop_asked_for(integrator_round):
  c, env, learner, first, second = integrator_round
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key, _question())
  np.testing.assert_array_equal(s.ids, second.asked[1])
  np.testing.assert_allclose(s.tasks, second.data.task[5:6])
  np.testing.assert_array_equal(s.candidates.tasks[s.chosen], s.tasks)
  # AMF asks for a task of maximal alpha; the batch teaches: no target's variance grows and
  # the asked task's drops.
  assert s.scores[s.ids[0]] >= s.scores.max() * (1 - 1e-5)
  assert np.all(s.variance_after <= s.variance_before * (1 + 1e-4))
  assert s.variance_after[s.ids[0]] < 0.9 * s.variance_before[s.ids[0]]
  np.testing.assert_allclose(s.target_weights.sum(), 1.0, rtol=1e-6)


@pytest.mark.slow  # compiles a loop, then runs the command in a subprocess
def test_the_command_on_the_loops_files_asks_for_the_same_task(integrator_round, tmp_path):
  c, env, learner, first, second = integrator_round
  key = round_streams(first.key)["selection"]
  suggest.save_policy(tmp_path / "policy", c.env, c.env_kwargs, c, first.learner, key)
  suggest.save_demos(tmp_path / "demos.npz", first.data)
  (tmp_path / "tasks.json").write_text(json.dumps(dict(estimator="importance",
                                                       occupancy_samples=2, stride=2)))
  # In-process from the files: the restored policy and data give the same answer.
  env2, learner2, state, saved = suggest.load_policy(tmp_path / "policy")
  demos = suggest.load_demos(tmp_path / "demos.npz")
  question, _ = suggest.load_question(tmp_path / "tasks.json", env2, key, batch_size=1)
  s = suggest.suggest(env2, learner2, state, demos, saved, question)
  np.testing.assert_array_equal(s.ids, second.asked[1])
  out = subprocess.run(
      [sys.executable, "-m", "amf.suggest", f"--policy={tmp_path / 'policy'}",
       f"--demos={tmp_path / 'demos.npz'}", f"--tasks={tmp_path / 'tasks.json'}", "--batch=1",
       f"--out={tmp_path / 'out'}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "Ask for, in this order" in out.stdout
  result = json.loads((tmp_path / "out" / "suggestion.json").read_text())
  assert [a["id"] for a in result["asked"]] == np.asarray(second.asked[1]).tolist()
  assert [result["candidates"][a["candidate"]]["id"] for a in result["asked"]] == [
      a["id"] for a in result["asked"]]
  assert (tmp_path / "out" / "suggestion.png").stat().st_size > 10_000


@pytest.mark.slow  # compiles a continuous loop
def test_suggest_in_a_continuous_space_asks_for_what_the_loop_asked_for():
  region = ((1.7, 2.4),)
  c, env, learner, first, second = _loop_two_rounds(
      "integrator", key=1, estimators=("uniform",), task_space="continuous",
      target_region=region, num_targets=4, proposal="random", num_candidates=6)
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key,
                      suggest.Question(estimator="uniform", occupancy_samples=2, stride=2,
                                       task_space="continuous", proposal="random",
                                       num_candidates=6, target_region=region),
                      targets=first.targets)
  np.testing.assert_allclose(s.tasks, second.data.task[5:6], rtol=1e-6)
  assert s.candidates.tasks.shape == (6, 1)


@pytest.mark.slow  # brax reacher: pre-training, one round, the suggestion
def test_suggest_on_reacher_asks_for_what_the_loop_asked_for():
  c, env, learner, first, second = _loop_two_rounds("reacher", stride=10)
  key = round_streams(first.key)["selection"]
  s = suggest.suggest(env, learner, first.learner, first.data, key,
                      _question(stride=10, batch_size=1))
  np.testing.assert_array_equal(s.ids, second.asked[1])


# Bad input: a one-line ValueError before anything compiles.

@pytest.fixture(scope="module")
def small():
  c = _config("integrator", pretrain_steps=10)
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(c, env)
  demos = data.concat(data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 1, 2])),
                      data.empty(env, 1))
  return c, env, learner, demos


@pytest.mark.parametrize("change,match", [
    (dict(obs=lambda d: d.obs[:, :, :1]), r"obs has shape \(4, 8, 1\), expected \('M', 8, 2\)"),
    (dict(actions=lambda d: d.actions[:3]), "actions has shape"),
    (dict(task=lambda d: d.task.at[0, 0].set(9.0)), "outside the task space"),
    (dict(mask=lambda d: jnp.zeros_like(d.mask)), "the set is empty"),
    (dict(obs=lambda d: d.obs.at[0, 0, 0].set(jnp.nan)), "obs has NaN"),
])
def test_bad_demonstrations_are_refused(small, change, match):
  c, env, learner, demos = small
  bad = demos._replace(**{k: f(demos) for k, f in change.items()})
  with pytest.raises(ValueError, match=match):
    suggest.check(env, learner, bad, suggest.Question())


@pytest.mark.parametrize("question,targets,match", [
    (dict(kernel="ntk"), None, "Unknown kernel 'ntk' for this policy"),
    (dict(estimator="guess"), None, "occupancy estimator 'guess'"),
    (dict(batch_size=0), None, "batch size must be at least 1"),
    (dict(task_space="continuous", proposal="random", num_candidates=4), None,
     "needs target tasks of shape"),
    (dict(task_space="continuous", proposal="random", num_candidates=4), np.array([[9.0]]),
     "outside the task space"),
    (dict(proposal="nearest"), None, "proposal 'nearest'"),
    (dict(target_tasks=(0, 1), target_mass=(1.0,)), None, "target_mass needs one"),
])
def test_bad_questions_are_refused(small, question, targets, match):
  c, env, learner, demos = small
  with pytest.raises(ValueError, match=match):
    suggest.check(env, learner, demos, suggest.Question(**question), targets)


@pytest.mark.parametrize("spec,match", [
    (dict(target=[1]), r"unknown keys \['target'\]"),
    (dict(targets=[1, 40]), r"target ids \[40\]"),
    (dict(space="continuous"), "needs targets"),
    (dict(target_region=[[0, 1]]), "target_region is for a continuous space"),
])
def test_bad_question_files_are_refused(small, tmp_path, spec, match):
  c, env, learner, demos = small
  (tmp_path / "q.json").write_text(json.dumps(spec))
  with pytest.raises(ValueError, match=match):
    suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))


def test_question_files_give_mu_and_continuous_targets(small, tmp_path):
  c, env, learner, demos = small
  (tmp_path / "q.json").write_text(json.dumps(dict(targets=[3, 5], weights=[3, 1], batch_size=2)))
  q, targets = suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))
  assert (q.target_tasks, q.target_mass, q.batch_size, targets) == ((3, 5), (3.0, 1.0), 2, None)
  (tmp_path / "c.json").write_text(json.dumps(dict(space="continuous", proposal="continuous",
                                                   target_region=[[1.0, 2.0]], num_targets=5)))
  q, targets = suggest.load_question(tmp_path / "c.json", env, jax.random.PRNGKey(0))
  assert q.task_space == "continuous" and targets.shape == (5, 1)
  assert np.all((targets >= 1.0) & (targets <= 2.0))


def test_demonstrations_from_a_directory_of_episodes(small, tmp_path):
  c, env, learner, demos = small
  for i in range(3):
    np.savez(tmp_path / f"ep{i}.npz", obs=demos.obs[i], actions=demos.actions[i],
             task=demos.task[i])
  loaded = suggest.load_demos(tmp_path)
  np.testing.assert_allclose(loaded.obs, demos.obs[:3])
  assert loaded.mask.all() and np.all(loaded.task_id == -1)
  np.savez(tmp_path / "ep3.npz", obs=demos.obs[0, :4], actions=demos.actions[0], task=demos.task[0])
  with pytest.raises(ValueError, match="differ in shape"):
    suggest.load_demos(tmp_path)
  with pytest.raises(ValueError, match="neither a .npz file nor a directory"):
    suggest.load_demos(tmp_path / "missing.npz")


@pytest.mark.slow  # a subprocess
def test_the_command_prints_one_line_errors(small, tmp_path):
  c, env, learner, demos = small
  state = jax.jit(learner.init)(demos, jax.random.PRNGKey(0))
  suggest.save_policy(tmp_path / "policy", c.env, c.env_kwargs, c, state)
  suggest.save_demos(tmp_path / "demos.npz", demos._replace(mask=jnp.zeros_like(demos.mask)))
  (tmp_path / "tasks.json").write_text("{}")
  out = subprocess.run(
      [sys.executable, "-m", "amf.suggest", f"--policy={tmp_path / 'policy'}",
       f"--demos={tmp_path / 'demos.npz'}", f"--tasks={tmp_path / 'tasks.json'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert out.returncode == 2
  assert "amf.suggest: error: demonstrations: the set is empty" in out.stderr
  assert "Traceback" not in out.stderr
