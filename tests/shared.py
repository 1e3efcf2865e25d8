"""Small settings that several test files share; `conftest.py` builds the shared fixtures on them."""
import jax

from amf import gp_kernels
from amf.gp_policy import GPPolicy

# The tiny AMF-GP setting of test_active.py and test_sweep.py: integrator, H=8, 4 pre-training
# demos on task 0 only, 2 rounds of 1 demo.
K, R, B, PRETRAIN = 12, 2, 1, 4
SETTINGS = dict(pretrain_size=PRETRAIN, budget=R * B, batch_size=B, eval_episodes=2,
                occupancy_samples=2)
LABELS = ["seed 0", "seed 1"]


def gp_learner(env):
  kernel = gp_kernels.make("rbf", 2, 2, 0.5, 0.5, 1.0)
  return GPPolicy(env, kernel, noise=0.1, action_std=0.1)


# BC of a tiny MLP policy on the integrator (test_bc.py, test_forgetting.py, test_checkpoint.py).
STEPS, BATCH = 400, 64


def features(env, d):
  return jax.vmap(env.task_features)(d.task)[:, None]
