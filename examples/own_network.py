"""A lab's own network, task file and HDF5 demonstrations through `amf.suggest`, end to end.

  python -m examples.own_network --workdir=runs/own_network

The lab's side, with nothing of the testbed's policy: a flax network unlike the testbed's MLP
(`@nn.compact`, LayerNorm, a residual block, its last layer named `out`) trained by its own BC
loop on demonstrations stored robomimic-style (`demos.hdf5`: `data/demo_<i>/obs/...`,
`actions`, the task as an attribute). Here the demonstrations are the integrator's scripted
expert on 3 of its 12 goals, so the answer can be checked: AMF should ask for goals far from
them. `amf.suggest` sees files only:

1. `policy/`: `amf.suggest.save_flax_policy` writes `policy.json` (this module's `make` by
   name, the sizes, the task space: goal angles in [0, 2 pi) with the `angle` feature map,
   12 goals) and the parameters.
2. `tasks.json`: the question (4 tasks, all goals matter).
3. `python -m amf.suggest --policy=... --demos=demos.hdf5 --tasks=tasks.json`.
"""
import json
import pathlib
import subprocess
import sys

import flax.linen as nn
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from amf import cli, data, envs, flax_policy, suggest
from amf.nn_policy import FixedStd
from amf.policies import policy_inputs

flags.DEFINE_string("workdir", "runs/own_network", "Where the policy, data and answer go.")
flags.DEFINE_integer("steps", 2000, "BC steps of the lab's own training loop.")
FLAGS = flags.FLAGS

# The lab's task space, as the question file and policy.json write it (`amf.task_sets`).
TASK_SPACE = dict(low=[0.0], high=[2 * float(np.pi)], periodic=[True], features="angle",
                  num_tasks=12)


class ResidualPolicy(nn.Module):
  """LayerNorm'd residual MLP; the last layer is `out`."""
  width: int
  action_size: int

  @nn.compact
  def __call__(self, x):
    h = nn.LayerNorm()(nn.Dense(self.width)(x))
    h = h + nn.Dense(self.width)(nn.gelu(nn.Dense(self.width)(nn.gelu(h))))
    return nn.Dense(self.action_size, name="out")(nn.gelu(nn.LayerNorm()(h)))


def make(observation_size: int, task_feature_size: int, action_size: int, width: int = 64,
         action_std: float = 0.05) -> flax_policy.FlaxPolicy:
  """The lab's policy for `amf.suggest` (the `network` its policy.json names)."""
  del observation_size, task_feature_size  # flax infers the input size
  return flax_policy.FlaxPolicy(ResidualPolicy(width, action_size), "out",
                                FixedStd(action_size, action_std))


def write_hdf5(path, obs, actions, tasks) -> None:
  """Episodes in robomimic's layout (two observation keys: position, then the rest)."""
  with h5py.File(path, "w") as f:
    for i, (o, a, c) in enumerate(zip(obs, actions, tasks)):
      g = f.create_group(f"data/demo_{i}")
      g.create_dataset("obs/pos", data=o[:, :2])
      g.create_dataset("obs/rest", data=o[:, 2:])
      g.create_dataset("actions", data=a)
      g.attrs["task"] = c


def train(policy: flax_policy.FlaxPolicy, phi, obs, actions, tasks, steps: int, key):
  """The lab's own BC: full-batch Adam on the squared error of the mean action."""
  x = policy_inputs(obs, jax.vmap(phi)(tasks)[:, None])
  params = policy.module.init(key, x[0, 0])
  opt = optax.adam(3e-3)

  def step(carry, _):
    params, state = carry
    loss, grad = jax.value_and_grad(lambda p: jnp.mean(
        (policy.module.apply(p, x) - actions) ** 2))(params)
    updates, state = opt.update(grad, state)
    return (optax.apply_updates(params, updates), state), loss

  (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, steps)
  return params, losses[-1]


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  # Stand-in for the lab's robot: the integrator's expert on goals 0, 1 and 2 (2 episodes each).
  env = envs.make("integrator")
  demos = data.demonstrate(env, jax.random.PRNGKey(0), jnp.array([0, 0, 1, 1, 2, 2]))
  write_hdf5(workdir / "demos.hdf5", *(np.asarray(x) for x in (demos.obs, demos.actions,
                                                               demos.task)))
  policy = make(env.observation_size, 2, env.action_size)
  params, loss = jax.jit(lambda k: train(policy, env.task_features, demos.obs, demos.actions,
                                         demos.task, FLAGS.steps, k))(jax.random.PRNGKey(1))
  print(f"Trained the lab's network: BC loss {float(loss):.2e} after {FLAGS.steps} steps.")
  suggest.save_flax_policy(workdir / "policy", "examples.own_network:make", params, TASK_SPACE,
                           env.horizon, env.observation_size, env.action_size,
                           kernels=("loss_gradient", "last_layer"))
  (workdir / "tasks.json").write_text(json.dumps(dict(batch_size=4)))
  cmd = [sys.executable, "-m", "amf.suggest", f"--policy={workdir / 'policy'}",
         f"--demos={workdir / 'demos.hdf5'}", f"--tasks={workdir / 'tasks.json'}",
         f"--out={workdir / 'answer'}"]
  print("$ python", " ".join(cmd[1:]), flush=True)
  subprocess.run(cmd, check=True)


if __name__ == "__main__":
  cli.run(main)
