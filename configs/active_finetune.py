"""AMF-NN: active multi-task fine-tuning of a BC-trained MLP policy (docs/design.md §3, §9).

  --config=configs/active_finetune.py:reacher         the paper's scale on reacher
  --config=configs/active_finetune.py:reacher,quick   a laptop-sized run
  (env: reacher, pusher or integrator). Any field can be overridden, e.g.
  --config.kernels="('loss_gradient','last_layer')" --config.estimators="('importance','learned')"
  runs AMF once per kernel x estimator pair, all in one compiled program.
"""
import dataclasses

import ml_collections

from amf import nn_kernels, occupancy
from configs import task_space, testbed

# Per environment: pre-training size and budget, the stride of the states scored by the GP (a
# few per trajectory; the horizon is long), and the seeds and evaluation episodes. The
# environment, its demonstrations and the BC learner are the testbed's (`configs/testbed.py`).
# On reacher, `subset` pre-training (16 demos, 4 on each of the first 4 tasks) leaves half the
# tasks unsolved and 16 well-placed demos solve them (the data-efficiency curves); 40 seeds
# give the comparisons a minimal detectable difference of about 0.05 in success AUC (measured
# on a 5-seed pilot: sd of the AMF - uniform AUC difference 0.125). Pusher's physics costs 100
# times reacher's per step on a CPU; its BC needs more data (4 goals: 0.73 success at 8 demos
# per goal, 0.91 at 16), hence 32 pre-training demos (16 on each covered goal under `subset`)
# and a budget of 16 in rounds of 4: spent on the two uncovered goals it gives each 8 of its
# own, spread uniformly 4. 20 seeds x 8 episodes per goal: rebalancing - uniform in success
# AUC has an MDD of 0.05 there (docs/results.md). Pusher fine-tunes 1,000 steps per round:
# with 3,000 the accumulated steps overfit and no round improved on round 0 under `uniform`
# pre-training (docs/results.md, "Pusher fine-tuning"). Pusher evaluates 32 episodes per goal:
# at 8, binomial evaluation noise alone made a seed's success move by about 0.05 a round.
# Pusher's round is evaluation physics, which brax's generalized pipeline steps fastest on this
# CPU with few episodes side by side: 2 per run (40 under 20 vmapped runs; docs/speed.md).
ENVS = {
    "reacher": dict(pretrain_size=16, budget=16, batch_size=1, stride=5, num_seeds=40,
                    eval_episodes=10, finetune_steps=3000, eval_episode_batch=0,
                    checkpoint_every=5),
    "pusher": dict(pretrain_size=32, budget=16, batch_size=4, stride=10, num_seeds=20,
                   eval_episodes=32, finetune_steps=1000, eval_episode_batch=2,
                   checkpoint_every=1),
    "integrator": dict(pretrain_size=12, budget=12, batch_size=1, stride=1, num_seeds=10,
                       eval_episodes=10, finetune_steps=3000, eval_episode_batch=0,
                       checkpoint_every=5),
}


def get_config(arg: str = "reacher") -> ml_collections.ConfigDict:
  env, scale = testbed.parse(arg)
  defaults = ENVS[env]
  c = testbed.get_config(env)
  c.scale = scale
  c.seed = 0                  # base seed: seed s of a run is fold_in(seed, s)
  c.num_seeds = defaults["num_seeds"]
  c.methods = ("amf", "uniform", "rebalancing")

  # Pre-training mixes (the `variant` column): `subset` covers the first `subset_k` tasks (the
  # paper's mismatch; 0 = half of them), `skewed` has Zipf weights of strength `skew_strength`;
  # `subset:K` and `skewed:S` carry their own value, e.g. ("skewed:0.5", "skewed:2", "subset:2"),
  # all value variants of one compiled program.
  c.mixes = ("subset", "uniform")
  c.subset_k = 0
  c.skew_strength = 1.0
  c.pretrain_size = defaults["pretrain_size"]
  c.budget = defaults["budget"]   # N demonstrations asked for
  c.batch_size = defaults["batch_size"]  # B per round
  c.target_tasks = ()             # tasks that matter (mu uniform on them); () = all

  # Fine-tuning (the policy, its BC and the demonstrations' DART noise are the testbed's).
  c.finetune_steps = defaults["finetune_steps"]  # per round (the paper: 3,000)
  c.forgetting = "adaptive_prior"  # none | replay | adaptive_prior | isolation
  # Each mode's own options (`amf.forgetting.options(mode)`), e.g.
  # --config.forgetting_options.adaptive_prior.penalty=0.001.
  c.forgetting_options = ml_collections.ConfigDict(dict(
      adaptive_prior=dict(penalty=0.001, gate_hidden=(32,)), isolation=dict(num_cells=4)))

  # AMF's GP over the network: kernels and estimators, each a variant in the same program.
  c.kernels = ("loss_gradient",)
  c.estimators = ("importance",)
  c.kernel_hyper = ml_collections.ConfigDict(dataclasses.asdict(nn_kernels.Hyper()))
  c.critic = ml_collections.ConfigDict(occupancy.Critic()._asdict())  # `learned` estimator
  c.noise = 0.1                    # observation noise std, relative to the kernel's scale
  c.fit_noise = False              # instead, each round the noise of maximal marginal likelihood
  c.stride = defaults["stride"]    # score every stride-th state of a trajectory
  c.occupancy_samples = 2
  c.eval_episodes = defaults["eval_episodes"]
  # Tasks evaluated side by side: 1 keeps brax's CPU cost linear in the vmapped runs (10 seeds
  # x 8 tasks x 10 episodes at once run 2-3x slower per step); 0 (all) suits accelerators.
  c.eval_task_batch = 1
  # Or, if > 0, that many of a run's episodes side by side (pusher; `rollout.rollouts`).
  c.eval_episode_batch = defaults["eval_episode_batch"]
  # Rounds between orbax checkpoints and progress lines: 1 on pusher, whose 4 rounds take
  # minutes each, so a killed process loses at most one.
  c.checkpoint_every = defaults["checkpoint_every"]
  # Runs advanced at once (0: all of a variant group); bounds memory, e.g. for the empirical
  # NTK on pusher (docs/studies.md, "Memory").
  c.max_runs_per_call = 0
  task_space.add(c)  # finite task set by default (configs/task_space.py)

  if scale == "quick":
    c.num_seeds = 3
    c.budget = min(c.budget, 8)
    c.pretrain_steps = 1000
    c.finetune_steps = 500
    c.eval_episodes = 4
    c.checkpoint_every = 4
  return c
