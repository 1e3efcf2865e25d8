"""Meta-World v3 tasks, stepped by MuJoCo on the host inside jitted, vmapped rollouts.

Meta-World's physics is MuJoCo in C and cannot be traced, so `reset`, `step` and `expert` are
`jax.pure_callback`s with `vmap_method="broadcast_all"`: under the loop's `jit(vmap(...))`
every run and episode of a round goes to the host in ONE call per step, as one batch. A call
is a pure function of its inputs because the `State` carries the whole simulator state
(`_Host`): MuJoCo's integration state (`mjSTATE_INTEGRATION`: time, positions, velocities,
controls, mocap, solver warm start) and the per-episode attributes of Meta-World's env
object that its observation, reward and success read, all as float64 bits in pairs of uint32
(JAX runs in float32). Before each row is stepped they are restored into a host env object,
so which env object steps which episode changes nothing, and a resumed run steps as the
original did.
"""
import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from amf.envs.base import MultiTaskEnv, State, TaskBox
from amf.envs.metaworld_compat import import_metaworld


class _Episode(NamedTuple):
  """What a task's episode keeps beyond MuJoCo's state (read from metaworld 3.1.1's
  `reset_model`, `_get_obs`, `evaluate_state` and `compute_reward` (v2) of each task):
  attributes of the env object (name, size), and model bodies / sites its reset moves."""
  attrs: tuple[tuple[str, int], ...] = ()
  bodies: tuple[str, ...] = ()
  sites: tuple[str, ...] = ()


# Every task's observation reads the goal and the previous frame (frame stacking); rewards
# read the object's and gripper's initial positions; `step` counts the path length.
_COMMON = (("_target_pos", 3), ("obj_init_pos", 3), ("init_tcp", 3), ("_prev_obs", 18),
           ("curr_path_length", 1))
TASKS = {
    "reach-v3": _Episode(_COMMON, sites=("goal",)),
    "push-v3": _Episode(_COMMON, sites=("goal",)),
    "drawer-close-v3": _Episode(_COMMON, bodies=("drawer",), sites=("goal",)),
    "button-press-topdown-v3": _Episode(_COMMON + (("_obj_to_target_init", 1),),
                                        bodies=("box",)),
}
# Four tasks the scripted experts solve in 50-80 steps and a small MLP can clone from a few
# demonstrations each: all move the gripper through the same workspace in front of the robot
# (reach a point, push a puck, close a drawer, press a button from above), so states and
# actions of one partly carry over to another, yet each needs its own demonstrations. In this
# order, `subset` pre-training on the first two covers the free-space tasks (reach, push) and
# leaves the articulated objects (drawer, button) to the active loop.
DEFAULT_TASKS = ("reach-v3", "push-v3", "drawer-close-v3", "button-press-topdown-v3")

_OBS = 39       # Meta-World's observation: hand, gripper, objects, the same last step, goal
_ACTION = 4     # hand displacement (x, y, z) and gripper effort, in [-1, 1]
_MAX_PATH = 500  # Meta-World refuses to step an episode further


def _env_class(name):
  from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # pylint: disable=import-outside-toplevel
  return ALL_V3_ENVIRONMENTS[name]


# Tasks whose reset draws (object, goal) with the goal from `goal_space` (the last three
# entries of the random reset vector; a test checks it): the continuous variant sets the goal
# there instead of drawing it.
_GOAL_BOX = ("reach-v3", "push-v3")


class _Spec(NamedTuple):
  """A task's host env object and where its episode lives in a state row."""
  env: object
  nstate: int                 # MuJoCo integration state size
  attrs: tuple                # (name, offset, size, dtype or type): attributes in the row
  bodies: tuple               # (body id, offset)
  sites: tuple                # (site id, offset)
  nfields: int                # the episode fields' size
  canonical: tuple            # (body_pos, site_pos) of the model as built: each reset's start
  policy: object


class _Host:
  """The host side: one Meta-World env object per task, restored from a state row per step.

  A row is float64: `[MuJoCo state (padded to the largest task's) | episode fields (padded)]`,
  passed as its uint32 bits. Calls are serialised by a lock (JAX may call callbacks from
  several threads).
  """

  def __init__(self, names, goals: bool):
    import_metaworld()
    import mujoco  # pylint: disable=import-outside-toplevel
    from metaworld.policies import ENV_POLICY_MAP  # pylint: disable=import-outside-toplevel
    self._mj = mujoco
    self._integration = mujoco.mjtState.mjSTATE_INTEGRATION
    self.goals = goals
    self._lock = threading.Lock()
    self.specs = [self._spec(name, ENV_POLICY_MAP[name]()) for name in names]
    self.nstate_max = max(spec.nstate for spec in self.specs)
    self.row_size = self.nstate_max + max(spec.nfields for spec in self.specs)

  def _spec(self, name, policy):
    env = _env_class(name)()
    # As in Meta-World's MT benchmarks the goal is observed; each reset draws the task's
    # random object/goal positions from `np_random`, which `reset` seeds.
    env._set_task_called = True  # pylint: disable=protected-access
    env._partially_observable = False  # pylint: disable=protected-access
    del env.sawyer_observation_space  # cached with the goal hidden
    env._freeze_rand_vec = False  # pylint: disable=protected-access
    env.seeded_rand_vec = True
    if self.goals:
      env._get_state_rand_vec = _goal_setter(env)  # pylint: disable=protected-access
    env._reset_hand = _cached_hand_reset(env)  # pylint: disable=protected-access
    episode = TASKS[name]
    canonical = (env.model.body_pos.copy(), env.model.site_pos.copy())
    # The attributes' types as a reset leaves them (some arrays are float32, counts ints).
    _reset(self._mj, env, canonical, 0, env.goal_space.sample() if self.goals else None)
    offset, attrs = 0, []
    for attr, size in episode.attrs:
      value = getattr(env, attr)
      attrs.append((attr, offset, size, value.dtype if isinstance(value, np.ndarray)
                    else type(value)))
      offset += size
    bodies = tuple((env.model.body(b).id, offset + 3 * i) for i, b in enumerate(episode.bodies))
    offset += 3 * len(bodies)
    sites = tuple((env.model.site(s).id, offset + 3 * i) for i, s in enumerate(episode.sites))
    offset += 3 * len(sites)
    return _Spec(env, self._mj.mj_stateSize(env.model, self._integration), tuple(attrs),
                 bodies, sites, offset, canonical, policy)

  # --- rows <-> env objects

  def _load(self, spec, row):
    env = spec.env
    self._mj.mj_setState(env.model, env.data, row[:spec.nstate], self._integration)
    fields = row[self.nstate_max:]
    for attr, offset, size, kind in spec.attrs:
      value = fields[offset:offset + size]
      setattr(env, attr, value.astype(kind) if isinstance(kind, np.dtype) else kind(value[0]))
    for body, offset in spec.bodies:
      env.model.body_pos[body] = fields[offset:offset + 3]
    for site, offset in spec.sites:
      env.model.site_pos[site] = fields[offset:offset + 3]

  def _save(self, spec, row):
    env = spec.env
    row[:] = 0.0
    self._mj.mj_getState(env.model, env.data, row[:spec.nstate], self._integration)
    fields = row[self.nstate_max:]
    for attr, offset, size, _ in spec.attrs:
      fields[offset:offset + size] = np.ravel(getattr(env, attr))
    for body, offset in spec.bodies:
      fields[offset:offset + 3] = env.model.body_pos[body]
    for site, offset in spec.sites:
      fields[offset:offset + 3] = env.model.site_pos[site]

  def _task(self, task):
    if self.goals:
      return self.specs[0], task.astype(np.float64)
    return self.specs[int(round(float(task[0])))], None

  # --- batched callbacks (leading dims are the batch; all arguments broadcast to them)

  def reset(self, seed, task):
    seed, task = np.asarray(seed), np.asarray(task)  # callbacks receive JAX arrays
    batch = seed.shape[:-1]
    seed, task = seed.reshape(-1, 2), task.reshape(-1, task.shape[-1])
    rows = np.zeros((seed.shape[0], self.row_size))
    obs = np.zeros((seed.shape[0], _OBS), np.float32)
    with self._lock:
      for i in range(seed.shape[0]):
        spec, goal = self._task(task[i])
        s = int(seed[i, 0]) << 32 | int(seed[i, 1])
        obs[i] = _reset(self._mj, spec.env, spec.canonical, s, goal)
        self._save(spec, rows[i])
    return rows.view(np.uint32).reshape(*batch, -1), obs.reshape(*batch, _OBS)

  def step(self, rows, task, action, done):
    rows, task, action, done = map(np.asarray, (rows, task, action, done))
    batch = rows.shape[:-1]
    rows = np.array(rows.reshape(-1, rows.shape[-1])).view(np.float64)
    task, action = task.reshape(-1, task.shape[-1]), action.reshape(-1, _ACTION)
    done = done.reshape(-1)
    n = rows.shape[0]
    obs, reward, success = np.zeros((n, _OBS), np.float32), np.zeros(n, np.float32), np.zeros(
        n, bool)
    with self._lock:
      for i in np.flatnonzero(~done):
        spec, _ = self._task(task[i])
        self._load(spec, rows[i])
        o, r, _, _, info = spec.env.step(action[i].astype(np.float64))
        self._save(spec, rows[i])
        obs[i], reward[i], success[i] = o, r, info["success"]
    return (rows.view(np.uint32).reshape(*batch, -1), obs.reshape(*batch, _OBS),
            reward.reshape(batch), success.reshape(batch))

  def expert(self, obs, task):
    obs, task = np.asarray(obs), np.asarray(task)
    batch = obs.shape[:-1]
    obs, task = obs.reshape(-1, _OBS).astype(np.float64), task.reshape(-1, task.shape[-1])
    actions = np.stack([self._task(t)[0].policy.get_action(o) for o, t in zip(obs, task)])
    return np.clip(actions, -1.0, 1.0).astype(np.float32).reshape(*batch, _ACTION)


def _reset(mujoco, env, canonical, seed, goal):
  """Meta-World's reset from a canonical start, its draws seeded by `seed`: the model's moved
  bodies and sites back where they were built, MuJoCo's data reset, then the task's own
  `reset_model` and frame stacking (as gymnasium's `MujocoEnv.reset` and Meta-World's `reset`
  run them). Meta-World's own `reset` would first run `reset_model` from wherever the last
  episode left the env object, which makes its result depend on that episode."""
  body_pos, site_pos = canonical
  env.model.body_pos[:] = body_pos
  env.model.site_pos[:] = site_pos
  env.np_random = np.random.Generator(np.random.PCG64(seed))
  env.task_goal = goal
  mujoco.mj_resetData(env.model, env.data)
  obs = env.reset_model()
  env.curr_path_length = 0
  env._prev_obs = obs[:18].copy()  # pylint: disable=protected-access
  obs[18:36] = env._prev_obs  # pylint: disable=protected-access
  return obs


def _goal_setter(env):
  """The task's random reset vector with its goal part replaced by `env.task_goal`."""
  space = env._random_reset_space  # pylint: disable=protected-access

  def draw():
    obj = env.np_random.uniform(space.low[:-3], space.high[:-3])
    return np.concatenate([obj, env.task_goal])

  return draw


def _cached_hand_reset(env):
  """`_reset_hand` (50 frames moving the hand to its start), computed once and then copied:
  every reset runs it from the same state (MuJoCo's reset data, the model as built), so its
  result, MuJoCo data and `init_tcp`, is the same each time (checked by a test)."""
  import mujoco  # pylint: disable=import-outside-toplevel
  original, cache = env._reset_hand, {}  # pylint: disable=protected-access

  def reset_hand(steps: int = 50):
    if steps not in cache:
      original(steps)
      cache[steps] = (mujoco.MjData(env.model), env.init_tcp.copy())
      mujoco.mj_copyData(cache[steps][0], env.model, env.data)
    data, init_tcp = cache[steps]
    mujoco.mj_copyData(env.data, env.model, data)
    env.init_tcp = init_tcp.copy()

  return reset_hand


class MetaWorld(MultiTaskEnv):
  """Meta-World v3 tasks (`metaworld` 3.1.1 on MuJoCo, on the host).

  Finite variant (`tasks`, default `DEFAULT_TASKS`): task = the task's index as a 1-vector,
  features = one-hot; each task's random object and goal positions are its episode-start
  distribution, drawn from the episode's key. Continuous variant (`family`, e.g. "push-v3"):
  task = the goal position in that family's `goal_space` box, features = the goal, the
  object's position still drawn at random; the finite set is `grid(num_tasks)` over the box.

  Observations (39) and actions (4, in [-1, 1]; clipped) are Meta-World's, with the goal
  observed as in its MT benchmarks; the reward is Meta-World's (v2), success its
  `info["success"]`. An episode ends at success or at the horizon: from the first successful
  step on, the state is held (no more physics; the same observation and reward each step) and
  `info["success"]` stays set, so `success(final)` says whether the episode ever succeeded.
  The horizon of 150 steps (Meta-World allows 500) leaves room for the experts' 50-80 steps
  with DART noise and the slower attempts of a learned policy, while a failing episode costs
  no more than twice a success. The expert is Meta-World's scripted policy for the task, on the
  observation; its actions are clipped to [-1, 1], which Meta-World does before acting anyway.
  """

  def __init__(self, tasks: tuple[str, ...] = DEFAULT_TASKS, family: str = "",
               num_tasks: int = 4, horizon: int = 150):
    valid = sorted(TASKS)
    if family:
      if family not in _GOAL_BOX:
        raise ValueError(f"Meta-World's continuous variant needs a task that draws its goal from "
                         f"a goal box, one of {list(_GOAL_BOX)}; got family={family!r}.")
      names = (family,)
    else:
      names = tuple(tasks)
      unknown = [n for n in names if n not in TASKS]
      if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"Meta-World tasks must be distinct names among {valid}, got "
                         f"{list(names)}.")
    if not 1 <= horizon <= _MAX_PATH or num_tasks < 1:
      raise ValueError(f"MetaWorld needs 1 <= horizon <= {_MAX_PATH} and num_tasks >= 1, got "
                       f"horizon={horizon}, num_tasks={num_tasks}.")
    self.names, self.family = names, family
    self._host = _Host(names, goals=bool(family))
    self.horizon = horizon
    self.observation_size, self.action_size = _OBS, _ACTION
    if family:
      box = self._host.specs[0].env.goal_space
      self.task_space = TaskBox(tuple(map(float, box.low)), tuple(map(float, box.high)),
                                (False,) * 3)
      self.task_feature_size = 3
      self.tasks = self.grid(num_tasks)
    else:
      self.task_space = TaskBox((0.0,), (float(len(names) - 1),), (False,))
      self.task_feature_size = len(names)
      self.tasks = self.grid(len(names))

  def grid(self, num):
    if self.family:
      return self.task_space.grid(num)
    if not 1 <= num <= len(self.names):
      raise ValueError(f"Meta-World's finite set has {len(self.names)} tasks, asked for {num}.")
    return jnp.arange(num, dtype=jnp.float32)[:, None]

  def sample_tasks(self, key, num):
    if self.family:
      return self.task_space.sample(key, num)
    return jax.random.randint(key, (num, 1), 0, len(self.names)).astype(jnp.float32)

  def task_features(self, task):
    if self.family:
      return task
    return jax.nn.one_hot(task[0].astype(jnp.int32), len(self.names))

  def _row(self):
    return jax.ShapeDtypeStruct((2 * self._host.row_size,), jnp.uint32)

  def reset(self, key, task):
    seed = jax.random.bits(key, (2,), jnp.uint32)
    row, obs = jax.pure_callback(
        self._host.reset, (self._row(), jax.ShapeDtypeStruct((_OBS,), jnp.float32)), seed,
        task.astype(jnp.float32), vmap_method="broadcast_all")
    zero = jnp.zeros(())
    return State(row, obs, zero, zero, metrics={},
                 info={"task": task, "success": jnp.zeros((), bool)})

  def step(self, state, action):
    done = state.info["success"]
    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    row, obs, reward, success = jax.pure_callback(
        self._host.step,
        (self._row(), jax.ShapeDtypeStruct((_OBS,), jnp.float32), scalar,
         jax.ShapeDtypeStruct((), jnp.bool_)),
        state.pipeline_state, state.info["task"].astype(jnp.float32),
        jnp.clip(action, -1.0, 1.0).astype(jnp.float32), done, vmap_method="broadcast_all")
    hold = lambda new, old: jnp.where(done, old, new)
    success = done | success
    return state.replace(pipeline_state=hold(row, state.pipeline_state), obs=hold(obs, state.obs),
                         reward=hold(reward, state.reward), done=success.astype(jnp.float32),
                         info={**state.info, "success": success})

  def success(self, state):
    return state.info["success"]

  def expert(self, state):
    return jax.pure_callback(self._host.expert,
                             jax.ShapeDtypeStruct((_ACTION,), jnp.float32), state.obs,
                             state.info["task"].astype(jnp.float32), vmap_method="broadcast_all")
