"""A 2-D integrator: a point mass starts near the origin and must reach a goal on a circle."""
import jax
import jax.numpy as jnp

from amf.envs.base import MultiTaskEnv, State, TaskBox
from amf.envs.registry import Learner, Loop, Testbed, register


class Integrator(MultiTaskEnv):
  """`s' = s + clip(a, -max_action, max_action)`; task = goal angle, features = goal position.

  The reward is minus the distance to the goal after the step, minus a small control cost;
  success is a final distance below `success_threshold`. The expert moves straight at the goal
  at full speed, which reaches it exactly.
  """

  def __init__(self, num_tasks: int = 12, radius: float = 1.0, horizon: int = 8,
               max_action: float = 0.25, init_noise: float = 0.05,
               success_threshold: float = 0.1, ctrl_cost: float = 0.01):
    if num_tasks < 1 or horizon < 1:
      raise ValueError(f"Integrator needs num_tasks >= 1 and horizon >= 1, "
                       f"got {num_tasks} and {horizon}.")
    self.horizon = horizon
    self.observation_size = 2
    self.action_size = 2
    self.task_feature_size = 2
    self.radius, self.max_action, self.init_noise = radius, max_action, init_noise
    self.success_threshold, self.ctrl_cost = success_threshold, ctrl_cost
    self.task_space = TaskBox((0.0,), (2 * float(jnp.pi),), (True,))
    self.tasks = self.grid(num_tasks)

  def grid(self, num):
    return (2 * jnp.pi * jnp.arange(num) / num)[:, None]

  def task_features(self, task):
    return self.radius * jnp.concatenate([jnp.cos(task), jnp.sin(task)], -1)

  def _distance(self, state):
    return jnp.linalg.norm(state.obs - self.task_features(state.info["task"]))

  def reset(self, key, task):
    obs = self.init_noise * jax.random.normal(key, (2,))
    zero = jnp.zeros(())
    return State(pipeline_state=None, obs=obs, reward=zero, done=zero, info={"task": task})

  def step(self, state, action):
    action = jnp.clip(action, -self.max_action, self.max_action)
    state = state.replace(obs=state.obs + action)
    reward = -self._distance(state) - self.ctrl_cost * jnp.sum(action ** 2)
    return state.replace(reward=reward)

  def success(self, state):
    return self._distance(state) < self.success_threshold

  def expert(self, state):
    delta = self.task_features(state.info["task"]) - state.obs
    # Full speed along the straight line, scaled so no coordinate is clipped.
    scale = jnp.minimum(1.0, self.max_action / (jnp.max(jnp.abs(delta)) + 1e-9))
    return delta * scale


# The integrator is exact and cheap: studies at the quick scale run on it, and its expert needs
# no check. Its NN processes are named `integrator_nn`, apart from AMF-GP's `integrator_gp`.
register("integrator", Integrator, Testbed(
    env_kwargs=dict(num_tasks=12, horizon=8),
    learner=Learner(hidden=(64, 64), demo_noise=0.0, action_std=0.02),
    loop=Loop(pretrain_size=12, budget=12),
    quick_studies=True, study_name="integrator_nn", first_tasks=3, expert_figure=False))
