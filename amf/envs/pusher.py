"""Brax `pusher` made multi-task: the task places the goal the object must be pushed to."""
import brax.envs
from brax import kinematics
from brax import math
import jax
import jax.numpy as jnp

from amf.envs.base import MultiTaskEnv, State, TaskBox, brax_sizes, polar
from amf.envs.registry import Learner, Loop, Testbed, register

_ARM = 7                # arm joints; q[7:9] slide the object (y, x), q[9:11] the goal (y, x)
_OBJECT_RADIUS = 0.05
_BAR_RADIUS = 0.02      # the wrist's cross bar, which pushes; its two prongs cage the object
_HEIGHT = -0.275        # the object's centre height above the table
# Points of the wrist roll link the expert places: the bar's centre, the prongs' midpoint, and
# one end of the bar (so the fork points along the push and lies flat).
_POINTS = jnp.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])


class Pusher(MultiTaskEnv):
  """Brax's 7-joint pusher; task = `(angle, distance)` of the goal from the object's start.

  The object starts at `start` (plus uniform noise of `start_noise`); the goal is `distance`
  away from it in direction `angle`. The finite set is `num_tasks` angles evenly over
  `angle_range` at distance `distance`; the task space is any angle in the arc and a
  distance in `distance_range`. The default arc, 0 to 1.2 rad around the direction away from
  the shoulder (0.73 rad), is where the expert is reliable: its fork-shaped wrist cannot pull
  the object back towards the arm, and near the arm it cannot get low enough behind it (it
  fails from about -0.2 and 1.5 rad on). The reward is brax's own (object-goal distance,
  fingertip-object distance, control cost); success is a final object-goal distance below
  `success_threshold`, tighter than the goals' spacing. The expert moves the wrist's bar behind
  the object on the goal-object line, then pushes the object to the goal, with damped
  least-squares Jacobian control through brax's kinematics and computed-torque PD gains `kp`,
  `kd`. Physics is brax's `generalized` backend: its mass matrix serves the expert, and `mjx`
  runs this contact-rich scene about 100x slower on CPU.
  """

  def __init__(self, num_tasks: int = 8, distance: float = 0.2,
               distance_range: tuple[float, float] = (0.12, 0.2),
               angle_range: tuple[float, float] = (0.0, 1.2),
               start: tuple[float, float] = (0.45, -0.2), start_noise: float = 0.02,
               horizon: int = 100, success_threshold: float = 0.03, kp: float = 36.0,
               kd: float = 12.0, max_step: float = 0.1):
    if num_tasks < 1 or horizon < 1:
      raise ValueError(f"Pusher needs num_tasks >= 1 and horizon >= 1, "
                       f"got {num_tasks} and {horizon}.")
    if not 0 < distance_range[0] <= distance_range[1] or angle_range[0] > angle_range[1]:
      raise ValueError(f"Pusher needs 0 < distance_range[0] <= distance_range[1] and an "
                       f"increasing angle_range, got {distance_range} and {angle_range}.")
    self._env = brax.envs.get_environment("pusher", backend="generalized")
    sys = self._env.sys
    self._wrist = sys.link_names.index("r_wrist_roll_link")
    # The object's and the goal's slide joints are offsets from their bodies' positions.
    self._origin = jnp.array([0.45, -0.05])
    self.horizon = horizon
    self.observation_size, self.action_size = brax_sizes(self._env)
    self.task_feature_size = 2
    self.start, self.start_noise = jnp.array(start), start_noise
    self.distance_range, self.angle_range = distance_range, angle_range
    self.success_threshold = success_threshold
    self.kp, self.kd, self.max_step = kp, kd, max_step
    self.distance = distance
    self.task_space = TaskBox((float(angle_range[0]), float(distance_range[0])),
                              (float(angle_range[1]), float(distance_range[1])), (False, False))
    self.tasks = self.grid(num_tasks)

  def grid(self, num):
    angles = jnp.linspace(*self.angle_range, num)
    return jnp.stack([angles, jnp.full_like(angles, self.distance)], -1)

  def task_features(self, task):
    return self.start + polar(task)

  def reset(self, key, task):
    # Brax's reset (arm at rest, small velocity noise), with the object and goal from the task.
    sys = self._env.sys
    k1, k2 = jax.random.split(key)
    obj = self.start + jax.random.uniform(k1, (2,), minval=-self.start_noise,
                                          maxval=self.start_noise)
    slides = jnp.concatenate([obj, self.task_features(task)]) - jnp.tile(self._origin, 2)
    q = sys.init_q.at[_ARM:].set(slides.reshape(2, 2)[:, ::-1].ravel())  # joints are (y, x)
    qd = jax.random.uniform(k2, (sys.qd_size(),), minval=-0.005, maxval=0.005)
    pipeline_state = self._env.pipeline_init(q, qd.at[_ARM:].set(0.0))
    zero = jnp.zeros(())
    metrics = {"reward_dist": zero, "reward_ctrl": zero, "reward_near": zero}
    obs = self._env._get_obs(pipeline_state)  # pylint: disable=protected-access
    return State(pipeline_state, obs, zero, zero, metrics=metrics, info={"task": task})

  def step(self, state, action):
    # Brax's reward measures the distance to the goal body, which reset put at the task's goal.
    # Actions outside brax's actuator range [-1, 1] are clipped, so rewards see what acted.
    return self._env.step(state, jnp.clip(action, -1.0, 1.0))

  def _object(self, state):
    return state.obs[17:19]

  def success(self, state):
    goal = self.task_features(state.info["task"])
    return jnp.linalg.norm(self._object(state) - goal) < self.success_threshold

  def _points(self, q):
    """World positions of `_POINTS` on the wrist for arm joint angles `q`, shape `(3, 3)`."""
    sys = self._env.sys
    full = sys.init_q.at[:_ARM].set(q)
    x, _ = kinematics.forward(sys, full, jnp.zeros(sys.qd_size()))
    pos, rot = x.pos[self._wrist], x.rot[self._wrist]
    return pos + jax.vmap(math.rotate, (0, None))(_POINTS, rot)

  def expert(self, state):
    q, qd = state.pipeline_state.q[:_ARM], state.pipeline_state.qd[:_ARM]
    obj, goal = self._object(state), self.task_features(state.info["task"])
    u = goal - obj
    remaining = jnp.linalg.norm(u)
    u = u / jnp.maximum(remaining, 1e-6)
    points = self._points(q)
    bar = points[0]
    # Where the bar is relative to the object: along the push, across it, and above it.
    rel = bar[:2] - obj
    side = jnp.array([-u[1], u[0]])
    along, across = rel @ u, jnp.abs(rel @ side)
    contact = _OBJECT_RADIUS + _BAR_RADIUS + 0.005
    behind = (along < -contact + 0.02) & (across < 0.02) & (bar[2] < _HEIGHT + 0.03)
    pre = obj - (contact + 0.03) * u
    # Approach from above so the prongs clear the object, descending once over the pre-push spot.
    offset = jnp.linalg.norm(bar[:2] - pre)
    hover = 0.15 * jnp.clip((offset - 0.01) / 0.03, 0.0, 1.0)
    push = goal - contact * u
    target_xy = jnp.where(behind, jnp.where(remaining > 0.01, push, bar[:2]), pre)
    target = jnp.append(target_xy, _HEIGHT + jnp.where(behind, 0.0, hover))
    targets = target + 0.1 * jnp.stack([jnp.zeros(3), jnp.append(u, 0.0), jnp.append(side, 0.0)])
    # Bounded task-space steps, so far targets give a steady approach rather than a swing.
    error = targets - points
    error = error * jnp.minimum(1.0, self.max_step / jnp.linalg.norm(error, axis=-1,
                                                                     keepdims=True))
    jac = jax.jacfwd(lambda q: self._points(q).ravel())(q)
    dq = jac.T @ jnp.linalg.solve(jac @ jac.T + 1e-3 * jnp.eye(jac.shape[0]), error.ravel())
    # Computed-torque PD: the same response on every joint, light wrist or heavy shoulder.
    mass = state.pipeline_state.mass_mx[:_ARM, :_ARM]
    torque = mass @ (self.kp * dq - self.kd * qd)
    return jnp.clip(torque / self._env.sys.actuator.ctrl_range[:, 1], -1.0, 1.0)


# 4 goals 8 cm apart: with 8 (3.4 cm apart, success radius 3 cm) a goal gains little from its
# own demonstrations over its neighbours', so no choice of tasks could matter much. BC ends
# each call on a cosine-decayed step: with a constant step its success after 3,000 steps swung
# by up to 0.56 between rounds and fine-tuning never improved on round 0 (docs/results.md,
# "Pusher fine-tuning"); for the same reason it fine-tunes 1,000 steps a round. Its physics
# costs 100 times reacher's per step on a CPU and its BC needs more data (0.73 success at 8
# demos per goal, 0.91 at 16): 32 pre-training demos (16 on each covered goal under `subset`),
# a budget of 16 in rounds of 4 (spent on the two uncovered goals it gives each 8 of its own,
# spread uniformly 4). 32 evaluation episodes per goal: at 8, binomial noise alone moved a
# seed's success by about 0.05 a round. The round is evaluation physics, which brax's
# generalized pipeline steps fastest on this CPU with few episodes side by side: 2 per run
# (docs/speed.md). A round takes minutes, so it checkpoints every round (`costly`). The
# empirical NTK needs more memory per run here than 24 GiB hold (docs/studies.md, "Memory").
# In the discretisation study its 16 targets x 8 episodes are the 128 evaluation episodes a
# round that the finite set's 4 goals x 32 are.
register("pusher", Pusher, Testbed(
    env_kwargs=dict(num_tasks=4),
    learner=Learner(hidden=(256, 256), demo_noise=0.2, action_std=0.05, lr_decay="cosine"),
    loop=Loop(pretrain_size=32, budget=16, batch_size=4, stride=10, num_seeds=20,
              eval_episodes=32, finetune_steps=1000, eval_episode_batch=2, checkpoint_every=1),
    study_seeds=34, costly=True, skip_kernels=("ntk",), first_tasks=2, transfer_sources=(1,),
    studies={"discretisation": dict(eval_episodes=8, eval_episode_batch=0)}))
