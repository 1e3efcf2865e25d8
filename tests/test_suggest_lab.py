"""`amf.suggest` on a lab's own data: a task space from the question file (`amf.task_sets`) and
robomimic-style HDF5 demonstrations (`amf.demo_io`)."""
import json

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amf import data, demo_io, envs, nn_learner, suggest, task_sets
from configs import active_finetune


@pytest.fixture(scope="module")
def small():
  """The integrator's policy (briefly trained) and 4 demonstrations of tasks 0, 1, 2 and 5."""
  c = active_finetune.get_config("integrator,quick")
  c.update(dict(pretrain_steps=20, hidden=(16, 16), kernels=("loss_gradient", "last_layer")))
  env = envs.make(c.env, **c.env_kwargs)
  learner = nn_learner.make(nn_learner.Spec.from_config(c), env)
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 1, 2, 5]))
  state = jax.jit(learner.init)(demos, jax.random.PRNGKey(1))
  return c, env, learner, state, demos


def _asked(tmp_path, env, task_space, **question):
  (tmp_path / "q.json").write_text(json.dumps(dict(task_space=task_space, **question)))
  return suggest.load_question(tmp_path / "q.json", env, jax.random.PRNGKey(0))


def test_a_box_with_a_feature_map_is_the_environments_task_space(small, tmp_path):
  c, env, learner, state, demos = small
  box = dict(low=[0.0], high=[2 * np.pi], periodic=[True], features="angle", num_tasks=12)
  question, targets, tasks = _asked(tmp_path, env, box)
  assert isinstance(tasks, task_sets.TaskSet) and targets is None
  np.testing.assert_allclose(tasks.tasks, env.tasks, atol=1e-6)
  phi = jax.vmap(tasks.task_features)(tasks.tasks)
  np.testing.assert_allclose(phi, jax.vmap(env.task_features)(env.tasks), atol=1e-6)
  with pytest.raises(TypeError, match="no simulator"):
    tasks.reset(jax.random.PRNGKey(0), tasks.tasks[0])
  with pytest.raises(ValueError, match="the rollout estimator simulates episodes"):
    suggest.check(tasks, learner, demos, suggest.Question(estimator="rollout"))


@pytest.mark.slow  # compiles two suggestions
def test_a_listed_task_set_asks_what_the_environment_asks(small, tmp_path):
  """The integrator's 12 goals listed by their feature vectors (no environment): the same
  candidates, scores and batch as the registered environment."""
  c, env, learner, state, demos = small
  phi = jax.vmap(env.task_features)
  question, _, tasks = _asked(tmp_path, env, dict(tasks=np.asarray(phi(env.tasks)).tolist()),
                              batch_size=3, stride=2)
  assert tasks.task_feature_size == env.task_feature_size and tasks.num_tasks == env.num_tasks
  key = jax.random.PRNGKey(3)
  ref = suggest.suggest(env, learner, state, demos, key, question)
  listed = demos._replace(task=phi(demos.task), task_id=-jnp.ones_like(demos.task_id))
  s = suggest.suggest(tasks, suggest.with_tasks(learner, tasks), state, listed, key, question)
  np.testing.assert_array_equal(s.ids, ref.ids)
  np.testing.assert_allclose(s.scores, ref.scores, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(s.variance_after, ref.variance_after, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("spec,match", [
    ([1, 2], "task_space must be an object"),
    (dict(tasks=[[0, 1]], low=[0]), "either tasks .* or low and high"),
    (dict(), "either tasks .* or low and high"),
    (dict(tasks=[[0, 1]], colour=1), r"unknown keys \['colour'\]"),
    (dict(tasks=[0, 1]), "task_space.tasks must be a list of tasks"),
    (dict(tasks=[[0, 1]], features="wavelet"), "unknown features 'wavelet'"),
    (dict(tasks=[[0, 1, 2]]), "features 'identity' give 3 numbers per task; the policy takes 2"),
    (dict(low=[0], high=[1], features="polar"), "features 'polar' do not apply|give"),
    (dict(low=[1], high=[0]), "needs low < high"),
    (dict(low=[0], high=[1], periodic=["yes"]), "periodic"),
    (dict(low=[0, 0], high=[1, 1], num_tasks=0), "num_tasks must be a whole number >= 1"),
])
def test_bad_task_spaces_are_refused(small, tmp_path, spec, match):
  c, env, learner, state, demos = small
  with pytest.raises(ValueError, match=match) as e:
    _asked(tmp_path, env, spec)
  assert str(tmp_path / "q.json") in str(e.value)


def _robomimic(path, episodes, obs_group=True):
  """Writes `episodes` (dicts of obs, actions, task) in robomimic's layout."""
  with h5py.File(path, "w") as f:
    for i, e in enumerate(episodes):
      g = f.create_group(f"data/demo_{i}")
      if obs_group:  # two observation keys, split from obs
        g.create_dataset("obs/a_pos", data=e["obs"][:, :1])
        g.create_dataset("obs/b_vel", data=e["obs"][:, 1:])
      else:
        g.create_dataset("obs", data=e["obs"])
      g.create_dataset("actions", data=e["actions"])
      g.attrs["task"] = e["task"]


def test_demonstrations_from_robomimic_hdf5(small, tmp_path):
  c, env, learner, state, demos = small
  episodes = [dict(obs=np.asarray(demos.obs[i]), actions=np.asarray(demos.actions[i]),
                   task=np.asarray(demos.task[i])) for i in range(4)]
  # Eleven episodes: demo_10 is read after demo_9, not after demo_1.
  _robomimic(tmp_path / "demos.hdf5", [episodes[i % 4] for i in range(11)])
  loaded = demo_io.load_demos(tmp_path / "demos.hdf5")
  order = [i % 4 for i in range(11)]
  np.testing.assert_allclose(loaded.obs, demos.obs[np.array(order)])
  np.testing.assert_allclose(loaded.actions, demos.actions[np.array(order)])
  np.testing.assert_allclose(loaded.task, demos.task[np.array(order)])
  assert loaded.mask.all() and np.all(loaded.task_id == -1)
  suggest.check(env, learner, loaded, suggest.Question())  # a valid set for the policy
  _robomimic(tmp_path / "flat.h5", episodes, obs_group=False)
  np.testing.assert_allclose(demo_io.load_demos(tmp_path / "flat.h5").obs, demos.obs)


def test_episodes_of_different_lengths_from_hdf5_and_npz(small, tmp_path):
  """Episodes of 8, 5, 8 and 3 steps, as robomimic HDF5 and as a directory of .npz episodes:
  both read as the episodes padded to the horizon with their steps marked, and answer as the
  same episodes in memory, whatever their padding holds."""
  c, env, learner, state, demos = small
  lengths = [8, 5, 8, 3]
  episodes = [dict(obs=np.asarray(demos.obs[i, :n]), actions=np.asarray(demos.actions[i, :n]),
                   task=np.asarray(demos.task[i])) for i, n in enumerate(lengths)]
  _robomimic(tmp_path / "demos.hdf5", episodes)
  (tmp_path / "episodes").mkdir()
  for i, e in enumerate(episodes):
    np.savez(tmp_path / "episodes" / f"ep{i}.npz", **e)
  steps = np.arange(8) < np.array(lengths)[:, None]
  garbage = demos._replace(obs=jnp.where(steps[..., None], demos.obs, jnp.nan),
                           actions=jnp.where(steps[..., None], demos.actions, 1e4),
                           task_id=jnp.full(4, -1, jnp.int32), steps=steps)
  question = suggest.Question(estimator="importance", occupancy_samples=2, stride=2)
  want = suggest.suggest(env, learner, state, garbage, jax.random.PRNGKey(0), question)
  assert np.isfinite(want.scores).all()
  for path in (tmp_path / "demos.hdf5", tmp_path / "episodes"):
    loaded = demo_io.load_demos(path, horizon=env.horizon)
    np.testing.assert_array_equal(loaded.steps, steps)
    np.testing.assert_allclose(loaded.obs, np.where(steps[..., None], demos.obs, 0.0))
    np.testing.assert_allclose(loaded.actions, np.where(steps[..., None], demos.actions, 0.0))
    got = suggest.suggest(env, learner, state, loaded, jax.random.PRNGKey(0), question)
    jax.tree.map(np.testing.assert_array_equal, got, want)
  # Saved and read back as one .npz of stacked episodes, `steps` included.
  demo_io.save_demos(tmp_path / "stacked.npz", loaded)
  jax.tree.map(np.testing.assert_array_equal, demo_io.load_demos(tmp_path / "stacked.npz"),
               loaded)


def test_bad_hdf5_demonstrations_are_refused_naming_the_file(small, tmp_path):
  c, env, learner, state, demos = small
  e = dict(obs=np.zeros((8, 2)), actions=np.zeros((8, 2)), task=np.zeros(1))
  _robomimic(tmp_path / "long.hdf5", [e, e, dict(e, obs=np.zeros((9, 2)),
                                                 actions=np.zeros((9, 2)))])
  demo_io.load_demos(tmp_path / "long.hdf5")  # no horizon given: padded to the longest
  with pytest.raises(ValueError, match=r"long.hdf5:data/demo_2 has 9 steps, more than the "
                     r"policy's horizon 8 \(1 such episodes\)"):
    demo_io.load_demos(tmp_path / "long.hdf5", horizon=8)
  _robomimic(tmp_path / "steps.hdf5", [dict(e, actions=np.zeros((7, 2)))])
  with pytest.raises(ValueError, match=r"steps.hdf5:data/demo_0 has 8 observations but 7"):
    demo_io.load_demos(tmp_path / "steps.hdf5")
  with h5py.File(tmp_path / "notask.hdf5", "w") as f:
    f.create_dataset("data/demo_0/actions", data=np.zeros((8, 2)))
  with pytest.raises(ValueError, match=r"notask.hdf5:data/demo_0 lacks \['obs', 'task"):
    demo_io.load_demos(tmp_path / "notask.hdf5")
  with h5py.File(tmp_path / "empty.hdf5", "w") as f:
    f.create_group("data")
  with pytest.raises(ValueError, match="empty.hdf5 has no data/demo_<i> episodes"):
    demo_io.load_demos(tmp_path / "empty.hdf5")
  (tmp_path / "text.hdf5").write_text("not HDF5")
  with pytest.raises(ValueError, match="cannot read .*text.hdf5 as HDF5"):
    demo_io.load_demos(tmp_path / "text.hdf5")
