"""Meta-World on the host: pure, batched callbacks that replay MuJoCo exactly, and its experts."""
import functools
import operator
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from amf import rollout
from amf.envs import metaworld_compat
from amf.envs.metaworld import DEFAULT_TASKS, TASKS, MetaWorld, _env_class, _reset

H = 8  # short episodes: the properties below hold at every step


@pytest.fixture(scope="module")
def env():
  return MetaWorld(horizon=H)


def _bits(tree):
  return jax.tree.map(lambda x: np.asarray(x).tobytes(), tree)


def test_weld_shim_keeps_mujoco4s_extra_entry():
  metaworld_compat.import_metaworld()
  model = mujoco.MjModel.from_xml_path(_env_class("push-v3")().model_name)
  env = _env_class("push-v3")()
  weld = env.model.eq_type == mujoco.mjtEq.mjEQ_WELD
  np.testing.assert_array_equal(env.model.eq_data[weld, :11], metaworld_compat._WELD[None])
  np.testing.assert_array_equal(env.model.eq_data[weld, 11:], model.eq_data[weld, 11:])


def test_missing_or_other_metaworld_is_one_line(monkeypatch):
  metaworld = metaworld_compat.import_metaworld()
  monkeypatch.setattr(metaworld, "__version__", "2.0.0", raising=False)
  with pytest.raises(ImportError, match="Meta-World 2.0.0 is installed, this project needs"):
    metaworld_compat.import_metaworld()
  monkeypatch.setitem(sys.modules, "metaworld", None)
  with pytest.raises(ImportError, match="pip install --no-deps metaworld==3.1.1") as e:
    metaworld_compat.import_metaworld()
  assert "\n" not in str(e.value)


def test_bad_tasks_are_refused_with_the_valid_names():
  with pytest.raises(ValueError, match="push-v3"):
    MetaWorld(tasks=("push-v3", "fly-v3"))
  with pytest.raises(ValueError, match=r"\['reach-v3', 'push-v3'\]"):
    MetaWorld(family="drawer-close-v3")
  with pytest.raises(ValueError, match="'batch', 'metaworld'"):
    MetaWorld(stepper="mjx")
  with pytest.raises(ValueError, match="num_tasks=5 exceeds the 4 tasks"):
    MetaWorld(num_tasks=5)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_goal_box_tasks_draw_their_goal_from_it(name):
  """The continuous variant's premise: the reset vector ends with a draw from `goal_space`."""
  from amf.envs.metaworld import _GOAL_BOX  # pylint: disable=import-outside-toplevel
  env = _env_class(name)()
  space, goal = env._random_reset_space, env.goal_space  # pylint: disable=protected-access
  draws_goal = space.shape[0] == 6 and np.array_equal(space.low[3:], goal.low) and (
      np.array_equal(space.high[3:], goal.high))
  assert draws_goal == (name in _GOAL_BOX)


def test_same_key_same_trajectories_and_jit_vmap_is_one_by_one(env):
  key = jax.random.PRNGKey(3)
  run = jax.jit(lambda k: rollout.rollouts(env, env.expert, k, env.tasks, episodes=2))
  batched = run(key)
  assert _bits(run(key)) == _bits(batched)
  keys = jax.random.split(key, (env.num_tasks, 2))
  one = jax.jit(lambda k, c: rollout.rollout(env, env.expert, k, c))
  for t in range(env.num_tasks):
    for e in range(2):
      alone = one(keys[t, e], env.tasks[t])
      assert _bits(alone) == _bits(jax.tree.map(operator.itemgetter((t, e)), batched))
  assert batched.obs.shape == (env.num_tasks, 2, H, 39)
  # Distinct episodes of a task start apart (the task's own random positions).
  assert not np.array_equal(batched.obs[:, 0, 0], batched.obs[:, 1, 0])


def test_state_round_trip_and_restored_stepping_are_exact(env):
  """A row loaded and saved is the same row; stepping episodes interleaved in the one host env
  object gives bit for bit what stepping one episode on, untouched, gives."""
  host = env._host  # pylint: disable=protected-access
  spec = host.specs[1]
  task = np.array([[1.0], [1.0]], np.float32)  # push: contacts, the richest state
  seeds = np.array([[0, 1], [0, 2]], np.uint32)
  actions = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(np.float32)
  # The reference: episode 0 reset and stepped on in the env object, never saved or loaded.
  host.reset(seeds[:1], task[:1])
  untouched = [spec.env.step(a.astype(np.float64)) for a in actions]
  # The same episode with episode 1 reset after it and stepped after it at every step.
  rows, _ = host.reset(seeds, task)
  row = np.array(rows[0]).view(np.float64)
  host._load(spec, row)  # pylint: disable=protected-access
  again = np.empty_like(row)
  host._save(spec, again)  # pylint: disable=protected-access
  assert again.tobytes() == row.tobytes()
  done = np.zeros(2, bool)
  for a, (obs, reward, _, _, info) in zip(actions, untouched):
    rows, *step = host.step(rows, task, np.stack([a, -a]), done)
    for got, expected in zip(step, (obs, reward, info["success"])):
      np.testing.assert_array_equal(got[0], np.float32(expected))


def test_batched_stepping_is_metaworlds_own():
  """`stepper="batch"` (MuJoCo's Batch, numpy rewards) against Meta-World's own `step`, on
  every task, through contact and success: expert actions with DART noise, full episodes."""
  trajs = []
  for stepper in ("metaworld", "batch"):
    env = MetaWorld(horizon=90, stepper=stepper)
    episode = functools.partial(rollout.rollout, env, env.expert, noise=0.3)
    keys = jax.random.split(jax.random.PRNGKey(11), (env.num_tasks, 2))
    trajs.append(jax.jit(jax.vmap(jax.vmap(episode, (0, None))))(keys, env.tasks))
  assert _bits(trajs[0]) == _bits(trajs[1])
  assert 0 < float(trajs[0].success.mean()) < 1  # both outcomes are compared


def test_cached_hand_reset_is_the_original():
  metaworld_compat.import_metaworld()
  host = MetaWorld(tasks=("drawer-close-v3",), horizon=H)._host  # pylint: disable=protected-access
  spec = host.specs[0]
  fresh = _env_class("drawer-close-v3")()
  # pylint: disable=protected-access
  fresh._set_task_called, fresh._partially_observable = True, False
  del fresh.sawyer_observation_space
  fresh._freeze_rand_vec, fresh.seeded_rand_vec = False, True
  for seed in (5, 6):
    cached = _reset(mujoco, spec.env, spec.canonical, seed, None)
    original = _reset(mujoco, fresh, spec.canonical, seed, None)
    assert cached.tobytes() == original.tobytes()
    np.testing.assert_array_equal(spec.env.data.qpos, fresh.data.qpos)


def test_success_holds_the_state():
  env = MetaWorld(tasks=("reach-v3",), horizon=60)  # its expert succeeds in 45 steps
  traj = jax.jit(lambda k: rollout.rollouts(env, env.expert, k, env.tasks, episodes=2))(
      jax.random.PRNGKey(0))
  assert bool(traj.success.all())
  # Held from the first success on: the last steps repeat the observation and reward.
  np.testing.assert_array_equal(traj.obs[..., -1, :], traj.obs[..., -2, :])
  np.testing.assert_array_equal(traj.rewards[..., -1], traj.rewards[..., -2])
  assert float(traj.rewards[..., -1].min()) == 10.0  # Meta-World's reward at reach's goal


def test_continuous_variant_places_the_goal():
  env = MetaWorld(family="reach-v3", num_tasks=4, horizon=2)
  assert env.tasks.shape == (4, 3) and bool(env.task_space.contains(env.tasks).all())
  np.testing.assert_array_equal(env.task_features(env.tasks[1]), env.tasks[1])
  states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 4), env.tasks)
  np.testing.assert_allclose(states.obs[:, -3:], env.tasks, atol=1e-7)


def test_finite_features_are_one_hot(env):
  assert env.tasks.shape == (len(DEFAULT_TASKS), 1)
  np.testing.assert_array_equal(jax.vmap(env.task_features)(env.tasks), jnp.eye(4))
  first = MetaWorld(num_tasks=2, horizon=H)
  assert first.names == DEFAULT_TASKS[:2] and first.task_feature_size == 2
  with pytest.raises(ValueError, match=r"indices must lie in \[0, 1\], got \[0, 2\]"):
    first._host.reset(  # pylint: disable=protected-access
        np.zeros((2, 2), np.uint32), np.array([[0.0], [2.0]], np.float32))


@pytest.mark.slow  # 8 episodes of each task, to success (about 20 s)
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_experts_solve_every_task(noise):
  env = MetaWorld(horizon=150)
  trajs = jax.jit(lambda k: jax.vmap(jax.vmap(
      lambda kk, c: rollout.rollout(env, env.expert, kk, c, noise), (0, None)))(
          jax.random.split(k, (env.num_tasks, 8)), env.tasks))(jax.random.PRNGKey(7))
  assert float(trajs.success.mean(-1).min()) >= 0.95
