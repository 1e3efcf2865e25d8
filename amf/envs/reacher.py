"""Brax `reacher` made multi-task: the task places the target the fingertip must reach."""
import brax.envs
import jax
import jax.numpy as jnp

from amf.envs.base import MultiTaskEnv, State, TaskBox, brax_sizes, polar
from amf.envs.registry import Learner, Loop, Testbed, register

# Link lengths of brax's reacher: shoulder to elbow, elbow to fingertip.
_L0, _L1 = 0.1, 0.11


class Reacher(MultiTaskEnv):
  """Brax's 2-link reacher; task = `(angle, radius)` of the target, features = its position.

  The finite task set is `num_tasks` angles on a circle of radius `radius` (`grid`); the task
  space is any angle and a radius in `radius_range`. The arm starts stretched along +x
  (brax's pose and noise), so radii below ~0.19 keep a still arm from passing the test. The
  reward is brax's own (minus the fingertip-target distance minus the squared torque); success
  is a final fingertip-target distance below `success_threshold` (the target's and fingertip's
  radii sum to 0.019). The expert solves the arm's inverse kinematics analytically and tracks
  the joint angles with a PD controller.

  The expert is a continuous function of the state within each task, so BC can represent it:
  the elbow always bends the same way (`elbow`, +1 or -1), and the shoulder's goal angle is
  taken in `(shoulder_cut - 2 pi, shoulder_cut]` rather than wrapped around the current angle.
  (Taking the elbow's sign from the initial joint noise made the first actions bimodal, and
  wrapping the shoulder's error made the arm turn either way for targets behind it.) The one
  jump left is in task space, where the goal angle crosses the cut: at the default 3.5 rad, at
  target angles of 238-279 degrees depending on the radius (248 at radius 0.15, between the
  finite tasks 5 and 6).
  """

  def __init__(self, num_tasks: int = 8, radius: float = 0.15,
               radius_range: tuple[float, float] = (0.07, 0.17), horizon: int = 50,
               success_threshold: float = 0.02, backend: str = "mjx",
               kp: float = 0.5, kd: float = 0.08, elbow: float = 1.0,
               shoulder_cut: float = 3.5):
    if num_tasks < 1 or horizon < 1:
      raise ValueError(f"Reacher needs num_tasks >= 1 and horizon >= 1, "
                       f"got {num_tasks} and {horizon}.")
    if elbow not in (-1.0, 1.0):
      raise ValueError(f"Reacher's elbow must be +1 or -1, got {elbow}.")
    lo, hi = radius_range
    if not 0.02 < lo <= hi < _L0 + _L1 or not 0.02 < radius < _L0 + _L1:
      raise ValueError(f"Reacher radii must lie in (0.02, {_L0 + _L1}) to be reachable, "
                       f"got radius={radius}, radius_range={radius_range}.")
    self._env = brax.envs.get_environment("reacher", backend=backend)
    self.horizon = horizon
    self.observation_size, self.action_size = brax_sizes(self._env)
    self.task_feature_size = 2
    self.radius_range, self.success_threshold = (lo, hi), success_threshold
    self.kp, self.kd, self.elbow, self.shoulder_cut = kp, kd, elbow, shoulder_cut
    self.radius = radius
    self.task_space = TaskBox((0.0, lo), (2 * float(jnp.pi), hi), (True, False))
    self.tasks = self.grid(num_tasks)

  def grid(self, num):
    angles = 2 * jnp.pi * jnp.arange(num) / num
    return jnp.stack([angles, jnp.full_like(angles, self.radius)], -1)

  def task_features(self, task):
    return polar(task)

  def reset(self, key, task):
    # Brax's reset with its noise, but with the target placed by the task instead of at random.
    sys = self._env.sys
    k1, k2 = jax.random.split(key)
    q = sys.init_q + jax.random.uniform(k1, (sys.q_size(),), minval=-0.1, maxval=0.1)
    q = q.at[2:].set(self.task_features(task))
    qd = jax.random.uniform(k2, (sys.qd_size(),), minval=-0.005, maxval=0.005).at[2:].set(0)
    pipeline_state = self._env.pipeline_init(q, qd)
    zero = jnp.zeros(())
    obs = self._env._get_obs(pipeline_state)  # pylint: disable=protected-access
    return State(pipeline_state, obs, zero, zero,
                 metrics={"reward_dist": zero, "reward_ctrl": zero}, info={"task": task})

  def step(self, state, action):
    # Brax's reward measures the distance to the target body, which reset put at the task's goal.
    # Actions outside brax's actuator range [-1, 1] are clipped, so rewards see what acted.
    return self._env.step(state, jnp.clip(action, -1.0, 1.0))

  def success(self, state):
    return jnp.linalg.norm(state.obs[-3:]) < self.success_threshold

  def expert(self, state):
    x, y = self.task_features(state.info["task"])
    q, qd = state.pipeline_state.q[:2], state.pipeline_state.qd[:2]
    cos_elbow = (x ** 2 + y ** 2 - _L0 ** 2 - _L1 ** 2) / (2 * _L0 * _L1)
    elbow = self.elbow * jnp.arccos(jnp.clip(cos_elbow, -1.0, 1.0))
    shoulder = jnp.arctan2(y, x) - jnp.arctan2(_L1 * jnp.sin(elbow), _L0 + _L1 * jnp.cos(elbow))
    shoulder = self.shoulder_cut - jnp.mod(self.shoulder_cut - shoulder, 2 * jnp.pi)
    error = jnp.stack([shoulder, elbow]) - q
    return jnp.clip(self.kp * error - self.kd * qd, -1.0, 1.0)


# DART noise 0.2: without it BC stays near zero success whatever the number of demonstrations.
# `subset` pre-training (16 demos, 4 on each of the first 4 tasks) leaves half the tasks
# unsolved and 16 well-placed demos solve them (the data-efficiency curves, docs/testbed.md);
# 40 seeds give the comparisons a minimal detectable difference of about 0.05 in success AUC
# (a 5-seed pilot: sd of the AMF - uniform AUC difference 0.125), and the studies need 20 for
# theirs (`configs/studies/__init__.py`). The GP scores every 5th state of a trajectory.
register("reacher", Reacher, Testbed(
    env_kwargs=dict(num_tasks=8),
    learner=Learner(hidden=(128, 128), demo_noise=0.2, action_std=0.05),
    loop=Loop(pretrain_size=16, budget=16, batch_size=1, stride=5, num_seeds=40),
    study_seeds=20, first_tasks=4))
