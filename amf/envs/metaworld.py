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
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from amf.envs.base import MultiTaskEnv, State, TaskBox
from amf.envs.metaworld_compat import import_metaworld
from amf.envs.registry import Learner, Loop, Testbed, register


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

# How `step` runs on the host: `batch` (MuJoCo's `Batch` on `threads` threads, Meta-World's
# observation and reward vectorised in numpy) or `metaworld` (Meta-World's own `step`, one
# episode after another: the reference the other is tested against, and the way to run a task
# added to `TASKS` before its reward is vectorised).
STEPPERS = ("batch", "metaworld")
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

  def __init__(self, names, goals: bool, stepper: str, nthread: int):
    import_metaworld()
    import mujoco  # pylint: disable=import-outside-toplevel
    from metaworld.policies import ENV_POLICY_MAP  # pylint: disable=import-outside-toplevel
    self._mj = mujoco
    self._integration = mujoco.mjtState.mjSTATE_INTEGRATION
    self.goals = goals
    self._lock = threading.Lock()
    # The scripted policies warn when their gains overshoot [-1, 1]; `expert` clips, as
    # Meta-World's step does.
    warnings.filterwarnings("ignore", "Constant\\(s\\) may be too high", UserWarning)
    self.specs = [self._spec(name, ENV_POLICY_MAP[name]()) for name in names]
    self.nstate_max = max(spec.nstate for spec in self.specs)
    self.row_size = self.nstate_max + max(spec.nfields for spec in self.specs)
    self.fast = ([_FastStep(name, spec, nthread) for name, spec in zip(names, self.specs)]
                 if stepper == "batch" else None)

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
    _reset(self._mj, env, canonical, 0, env.goal_space.low if self.goals else None)
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

  def _index(self, task):
    """Each row's task index into `specs` (the nearest integer: a finite set's task)."""
    if self.goals:
      return np.zeros(task.shape[0], int)
    index = np.rint(task[:, 0]).astype(int)
    if index.size and not 0 <= index.min() <= index.max() < len(self.specs):
      raise ValueError(f"Meta-World task indices must lie in [0, {len(self.specs) - 1}], got "
                       f"{sorted(set(index.tolist()))}.")
    return index

  # --- batched callbacks (leading dims are the batch; all arguments broadcast to them)

  def reset(self, seed, task):
    seed, task = np.asarray(seed), np.asarray(task)  # callbacks receive JAX arrays
    batch = seed.shape[:-1]
    seed, task = seed.reshape(-1, 2), task.reshape(-1, task.shape[-1])
    rows = np.zeros((seed.shape[0], self.row_size))
    obs = np.zeros((seed.shape[0], _OBS), np.float32)
    with self._lock:
      for i, t in enumerate(self._index(task)):
        spec = self.specs[t]
        s = int(seed[i, 0]) << 32 | int(seed[i, 1])
        obs[i] = _reset(self._mj, spec.env, spec.canonical, s,
                        task[i].astype(np.float64) if self.goals else None)
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
    index = self._index(task)
    with self._lock:
      if self.fast is None:
        for i in np.flatnonzero(~done):
          spec = self.specs[index[i]]
          self._load(spec, rows[i])
          o, r, _, _, info = spec.env.step(action[i].astype(np.float64))
          self._save(spec, rows[i])
          obs[i], reward[i], success[i] = o, r, info["success"]
      else:
        for t, fast in enumerate(self.fast):
          rows_t = np.flatnonzero(~done & (index == t))
          if rows_t.size:
            stepped = rows[rows_t]
            obs[rows_t], reward[rows_t], success[rows_t] = fast(
                stepped, action[rows_t].astype(np.float64), self.nstate_max)
            rows[rows_t] = stepped
    return (rows.view(np.uint32).reshape(*batch, -1), obs.reshape(*batch, _OBS),
            reward.reshape(batch), success.reshape(batch))

  def expert(self, obs, task):
    obs, task = np.asarray(obs), np.asarray(task)
    batch = obs.shape[:-1]
    obs, task = obs.reshape(-1, _OBS).astype(np.float64), task.reshape(-1, task.shape[-1])
    actions = np.stack([self.specs[t].policy.get_action(o)
                        for o, t in zip(obs, self._index(task))])
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


# --- Batched stepping: MuJoCo's `Batch` steps every episode of a task on a thread pool, and
# Meta-World's observation, reward and success (v2) are computed for all of them at once in
# numpy, transcribed from its sources (`tests/test_metaworld.py` holds them to Meta-World's own
# `step`, episode by episode). Per-episode Python in Meta-World's own `step` costs 4-12x the
# physics (docs of `experiments/bench_metaworld.py`).


def _norm(x):
  return np.sqrt(np.einsum("...i,...i->...", x, x))


def _tolerance(x, lower, upper, margin, sigmoid):
  """`reward_utils.tolerance` with per-episode margins: 1 within bounds, else a sigmoid of the
  distance to them in units of `margin` (0 where the margin is 0)."""
  d = np.where(x < lower, lower - x, x - upper) / np.where(margin == 0, 1.0, margin)
  if sigmoid == "long_tail":
    value = 1 / ((d * np.sqrt(1 / 0.1 - 1)) ** 2 + 1)
  else:  # gaussian
    value = np.exp(-0.5 * (d * np.sqrt(-2 * np.log(0.1))) ** 2)
  return np.where((lower <= x) & (x <= upper), 1.0, np.where(margin == 0, 0.0, value))


def _hamacher(a, b):
  denominator = a + b - a * b
  return np.where(denominator > 0, a * b / np.where(denominator > 0, denominator, 1.0), 0.0)


def _reach(v, obs, action):
  del obs, action
  to_target = _norm(v.tcp - v.target)
  in_place = _tolerance(to_target, 0.0, 0.05, _norm(v.env.hand_init_pos - v.target), "long_tail")
  return 10 * in_place, to_target <= 0.05


def _push(v, obs, action):
  obj, opened = obs[:, 4:7], obs[:, 3]
  tcp_to_obj, to_target = _norm(obj - v.tcp), _norm(obj - v.target)
  in_place = _tolerance(to_target, 0.0, 0.05, _norm(v.obj_init - v.target), "long_tail")
  # `_gripper_caging_reward(obj_radius=0.015, pad_success_thresh=0.05, xz_thresh=0.005,
  # high_density=True)`
  pads_y = v.xpos[:, [v.ids["leftpad"], v.ids["rightpad"]], 1]
  to_obj = np.abs(pads_y - obj[:, 1:2])
  margin = np.abs(np.abs(pads_y - v.obj_init[:, 1:2]) - 0.05)
  lr = _tolerance(to_obj, 0.015, 0.05, margin, "long_tail")
  caging_y = _hamacher(lr[:, 0], lr[:, 1])
  xz = [0, 2]
  caging_xz = _tolerance(_norm(v.tcp[:, xz] - obj[:, xz]), 0.0, 0.005,
                         _norm(v.obj_init[:, xz] - v.init_tcp[:, xz]) - 0.005, "long_tail")
  closed = np.minimum(np.maximum(0.0, action[:, -1]), 1.0)
  caging = _hamacher(caging_y, caging_xz)
  gripping = np.where(caging > 0.97, closed, 0.0)
  grasped = (_hamacher(caging, gripping) + caging) / 2
  reward = 2 * grasped
  reward = np.where((tcp_to_obj < 0.02) & (opened > 0), 1.0 + 2 * reward + 5.0 * in_place, reward)
  return np.where(to_target < 0.05, 10.0, reward), to_target <= 0.05


def _drawer_close(v, obs, action):
  obj = obs[:, 4:7]
  to_target = _norm(obj - v.target)
  in_place = _tolerance(to_target, 0.0, 0.05, np.abs(_norm(v.obj_init - v.target) - 0.05),
                        "long_tail")
  reach = _tolerance(_norm(obj - v.tcp), 0.0, 0.005,
                     np.abs(_norm(v.obj_init - v.init_tcp) - 0.005), "gaussian")
  reach = _hamacher(reach, np.minimum(np.maximum(0.0, action[:, -1]), 1.0))
  reward = np.where(to_target <= 0.065, 1.0, _hamacher(reach, in_place))
  return 10 * reward, to_target <= 0.065


def _button_press_topdown(v, obs, action):
  del action
  obj = obs[:, 4:7]
  tcp_to_obj = _norm(obj - v.tcp)
  to_target = np.abs(v.target[:, 2] - obj[:, 2])
  near = _tolerance(tcp_to_obj, 0.0, 0.01, _norm(obj - v.init_tcp), "long_tail")
  pressed = _tolerance(to_target, 0.0, 0.005, v.fields["_obj_to_target_init"][:, 0], "long_tail")
  reward = 5 * _hamacher(1 - obs[:, 3], near) + np.where(tcp_to_obj <= 0.03, 5 * pressed, 0.0)
  return reward, to_target <= 0.024


def _quat_of_geom(name):
  def quat(v):
    from scipy.spatial.transform import Rotation  # pylint: disable=import-outside-toplevel
    return Rotation.from_matrix(v.batch.geom_xmat[:v.n, v.ids[name]].reshape(-1, 3, 3)).as_quat()
  return quat


# Per task: the object's position (body, offset), its quaternion, and reward/success.
_FAST = {
    "reach-v3": (("obj", (0.0, 0.0, 0.0)), _quat_of_geom("objGeom"), _reach),
    "push-v3": (("obj", (0.0, 0.0, 0.0)), _quat_of_geom("objGeom"), _push),
    "drawer-close-v3": (("drawer_link", (0.0, -0.16, 0.05)), lambda v: np.zeros((v.n, 4)),
                        _drawer_close),
    "button-press-topdown-v3": (("button", (0.0, 0.0, 0.193)),
                                lambda v: v.batch.xquat[:v.n, v.ids["button"]],
                                _button_press_topdown),
}


class _View:
  """One call's batch of a task's episodes: fields by name and what the physics computed."""

  def __init__(self, env, batch, ids, n, fields, spec):
    self.env, self.batch, self.ids, self.n = env, batch, ids, n
    self.fields = {attr: fields[:, o:o + size] for attr, o, size, _ in spec.attrs}
    self.target, self.obj_init = self.fields["_target_pos"], self.fields["obj_init_pos"]
    self.init_tcp = self.fields["init_tcp"]
    self.xpos = batch.xpos[:n]
    site = batch.site_xpos[:n]
    self.tcp = (site[:, ids["rightEndEffector"]] + site[:, ids["leftEndEffector"]]) / 2.0


class _FastStep:
  """A task's batched step (see above), on a `mujoco.batch.Batch` grown to the largest call."""

  def __init__(self, name, spec, nthread):
    import mujoco  # pylint: disable=import-outside-toplevel
    self._mj, self.spec, self.nthread = mujoco, spec, nthread
    env = spec.env
    (self._obj, self._obj_offset), self._quat, self._evaluate = _FAST[name]
    names = ("hand", "rightclaw", "leftclaw", "leftpad", "rightpad", self._obj)
    self.ids = {b: env.model.body(b).id for b in names}
    self.ids.update({s: env.model.site(s).id for s in ("rightEndEffector", "leftEndEffector")})
    # Derived fields are copied out of the batch only if bound before its calls.
    self._outputs = ("xpos", "site_xpos")
    if name in ("reach-v3", "push-v3"):
      self.ids["objGeom"] = env.model.geom("objGeom").id
      self._outputs += ("geom_xmat",)
    if name == "button-press-topdown-v3":
      self._outputs += ("xquat",)
    space = env.sawyer_observation_space
    self._low, self._high = space.low, space.high
    self.batch = None

  def __call__(self, rows, actions, nstate_max):
    """Steps `rows` (n, row) in place; returns observations, rewards and successes."""
    spec, env, n = self.spec, self.spec.env, rows.shape[0]
    if self.batch is None or self.batch.nsim < n:
      from mujoco import batch as mj_batch  # pylint: disable=import-outside-toplevel
      self.batch = mj_batch.Batch(env.model, max(n, 32), self.nthread)
      for output in self._outputs:
        self.batch.bind(output)
    batch, fields = self.batch, rows[:, nstate_max:]
    batch.state[:n] = rows[:, :spec.nstate]
    if spec.bodies:
      body_pos = batch.expand("body_pos")
      for body, offset in spec.bodies:
        body_pos[:n, body] = fields[:, offset:offset + 3]
    # Meta-World's `set_xyz_action` and `do_simulation`: the mocap moves by the clipped action,
    # the two gripper fingers get the effort with opposite signs.
    mocap = batch.bind("mocap_pos")
    moved = mocap[:n] + np.clip(actions[:, None, :3], -1, 1) * env.action_scale
    moved[:, 0] = np.clip(moved[:, 0], env.mocap_low, env.mocap_high)
    mocap[:n] = moved
    batch.bind("mocap_quat")[:n] = np.array([1.0, 0.0, 1.0, 0.0])
    batch.bind("ctrl")[:n] = np.stack([actions[:, -1], -actions[:, -1]], -1)
    batch.step(np.arange(n), nstep=env.frame_skip, stage=self._mj.mjtStage.mjSTAGE_POS)
    rows[:, :spec.nstate] = batch.state[:n]
    v = _View(env, batch, self.ids, n, fields, spec)
    xpos = v.xpos
    grip = np.clip(_norm(xpos[:, self.ids["rightclaw"]] - xpos[:, self.ids["leftclaw"]]) / 0.1,
                   0.0, 1.0)
    curr = np.zeros((n, 18))
    curr[:, :3], curr[:, 3] = xpos[:, self.ids["hand"]], grip
    curr[:, 4:7] = xpos[:, self.ids[self._obj]] + np.array(self._obj_offset)
    curr[:, 7:11] = self._quat(v)
    obs = np.clip(np.concatenate([curr, v.fields["_prev_obs"], v.target], -1), self._low,
                  self._high)
    v.fields["_prev_obs"][:] = curr
    v.fields["curr_path_length"][:] += 1
    reward, success = self._evaluate(v, obs, actions)
    return obs, reward, success



class MetaWorld(MultiTaskEnv):
  """Meta-World v3 tasks (`metaworld` 3.1.1 on MuJoCo, on the host).

  Finite variant: the first `num_tasks` of `tasks` (default: all of `DEFAULT_TASKS`); task = the
  task's index as a 1-vector, features = one-hot; each task's random object and goal positions
  are its episode-start distribution, drawn from the episode's key. Continuous variant
  (`family`, "reach-v3" or "push-v3"): task = the goal position in that family's `goal_space`
  box, features = the goal, the object's position still drawn at random; the finite set is
  `grid(num_tasks)` over the box (default 4). (Push puts its goal at the puck's height
  whatever the box's z, a parameter its grid then spends a factor of 1 on.)

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
               num_tasks: int | None = None, horizon: int = 150, stepper: str = "batch",
               threads: int = 2):
    valid = sorted(TASKS)
    if stepper not in STEPPERS:
      raise ValueError(f"MetaWorld's stepper must be one of {list(STEPPERS)}, got {stepper!r}.")
    if family:
      if family not in _GOAL_BOX:
        raise ValueError(f"Meta-World's continuous variant needs a task that draws its goal from "
                         f"a goal box, one of {list(_GOAL_BOX)}; got family={family!r}.")
      names, num_tasks = (family,), num_tasks or 4
    else:
      names = tuple(tasks)
      unknown = [n for n in names if n not in TASKS]
      if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"Meta-World tasks must be distinct names among {valid}, got "
                         f"{list(names)}.")
      num_tasks = num_tasks or len(names)
      if num_tasks > len(names):
        raise ValueError(f"num_tasks={num_tasks} exceeds the {len(names)} tasks given: "
                         f"{list(names)}.")
      names = names[:num_tasks]
    if not 1 <= horizon <= _MAX_PATH or num_tasks < 1:
      raise ValueError(f"MetaWorld needs 1 <= horizon <= {_MAX_PATH} and num_tasks >= 1, got "
                       f"horizon={horizon}, num_tasks={num_tasks}.")
    self.names, self.family = names, family
    self._host = _Host(names, bool(family), stepper, threads)
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


# The testbed's first choices, from the quick data-efficiency curves (3 seeds, MLP 256-256, 1,500
# BC steps: success over the four tasks 0.35 at one demonstration per task, 0.78 at 16 with
# DART 0.2, against 0.38 / 0.72 with DART 0.1); the paper-scale curves and the subset regime
# decide the rest (docs/testbed.md). Rounds cost minutes of host physics (`costly`), so four
# rounds of 4 demonstrations, checkpointed each, and BC ends each call on a cosine-decayed step
# as on pusher; every task is evaluated side by side (the host steps each task's episodes as
# one MuJoCo batch, which runs faster the larger it is). The empirical NTK is left out as on
# pusher (the same network over more states); the discretisation study runs the continuous
# reach family (its goal box: every parameter moves the goal).
# The studies order the tasks so that `subset` pre-training covers the two the learner gets from
# one or two demonstrations (drawer, button) and leaves reach and push, which need many of their
# own and transfer little (docs/testbed.md, "Meta-World"), to the loop: in the default order the
# pre-training covered reach and push, and no allocation mattered (rebalancing - uniform +0.015
# [-0.011, +0.043] success AUC, 10 seeds; docs/testbed_metaworld/regime_reach_push_pretrained).
STUDY_ORDER = ("drawer-close-v3", "button-press-topdown-v3", "reach-v3", "push-v3")
register("metaworld", MetaWorld, Testbed(
    env_kwargs=dict(tasks=STUDY_ORDER, num_tasks=4, family=""),
    learner=Learner(hidden=(256, 256), demo_noise=0.2, action_std=0.05, lr_decay="cosine"),
    loop=Loop(pretrain_size=16, budget=16, batch_size=4, stride=10, num_seeds=10,
              eval_episodes=10, finetune_steps=1000, eval_task_batch=0, checkpoint_every=1),
    costly=True, skip_kernels=("ntk",), first_tasks=2,
    studies={"discretisation": dict(env_kwargs=dict(family="reach-v3"))}))

