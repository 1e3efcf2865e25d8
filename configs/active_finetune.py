"""AMF-NN: active multi-task fine-tuning of a BC-trained MLP policy (docs/design.md §3, §9).

  --config=configs/active_finetune.py:reacher         the paper's scale on reacher
  --config=configs/active_finetune.py:reacher,quick   a laptop-sized run
  (env: any registered environment, `amf.envs.ENVS`). Any field can be overridden, e.g.
  --config.kernels="('loss_gradient','last_layer')" --config.estimators="('importance','learned')"
  runs AMF once per kernel x estimator pair, all in one compiled program.
"""
import dataclasses

import ml_collections

from amf import envs, forgetting, nn_kernels, occupancy
from configs import task_space, testbed


def get_config(arg: str = "reacher") -> ml_collections.ConfigDict:
  env, scale = testbed.parse(arg)
  # Pre-training size and budget, the stride of the states scored by the GP, the seeds and
  # evaluation episodes: the environment's testbed (`amf.envs.registry.Loop`).
  loop = envs.testbed(env).loop
  c = testbed.get_config(env)
  c.scale = scale
  c.seed = 0                  # base seed: seed s of a run is fold_in(seed, s)
  c.num_seeds = loop.num_seeds
  c.methods = ("amf", "uniform", "rebalancing")

  # Pre-training mixes (the `variant` column): `subset` covers the first `subset_k` tasks (the
  # paper's mismatch; 0 = half of them), `skewed` has Zipf weights of strength `skew_strength`;
  # `subset:K` and `skewed:S` carry their own value, e.g. ("skewed:0.5", "skewed:2", "subset:2"),
  # all value variants of one compiled program.
  c.mixes = ("subset", "uniform")
  c.subset_k = 0
  c.skew_strength = 1.0
  c.pretrain_size = loop.pretrain_size
  c.budget = loop.budget   # N demonstrations asked for
  c.batch_size = loop.batch_size  # B per round
  c.target_tasks = ()             # tasks that matter (mu uniform on them); () = all

  # Fine-tuning (the policy, its BC and the demonstrations' DART noise are the testbed's).
  c.finetune_steps = loop.finetune_steps  # per round (the paper: 3,000)
  c.forgetting = "adaptive_prior"  # none | replay | adaptive_prior | isolation
  # Each mode's own options (`amf.forgetting.options(mode)`), e.g.
  # --config.forgetting_options.adaptive_prior.penalty=0.001.
  c.forgetting_options = ml_collections.ConfigDict({
      mode: forgetting.option_defaults(mode) for mode in forgetting.MODES
      if forgetting.options(mode)})
  c.forgetting_options.adaptive_prior.penalty = 0.001

  # AMF's GP over the network: kernels and estimators, each a variant in the same program.
  c.kernels = ("loss_gradient",)
  c.estimators = ("importance",)
  c.kernel_hyper = ml_collections.ConfigDict(dataclasses.asdict(nn_kernels.Hyper()))
  c.critic = ml_collections.ConfigDict(occupancy.Critic()._asdict())  # `learned` estimator
  c.noise = 0.1                    # observation noise std, relative to the kernel's scale
  c.fit_noise = False              # instead, each round the noise of maximal marginal likelihood
  c.stride = loop.stride    # score every stride-th state of a trajectory
  c.occupancy_samples = 2
  c.eval_episodes = loop.eval_episodes
  # Tasks evaluated side by side: 1 keeps brax's CPU cost linear in the vmapped runs (10 seeds
  # x 8 tasks x 10 episodes at once run 2-3x slower per step); 0 (all) suits accelerators and
  # host physics (Meta-World).
  c.eval_task_batch = loop.eval_task_batch
  # Or, if > 0, that many of a run's episodes side by side (pusher; `rollout.rollouts`).
  c.eval_episode_batch = loop.eval_episode_batch
  # Rounds between orbax checkpoints and progress lines: 1 on pusher, whose 4 rounds take
  # minutes each, so a killed process loses at most one.
  c.checkpoint_every = loop.checkpoint_every
  # Runs advanced at once (0: all of a variant group); bounds memory, e.g. for the empirical
  # NTK on pusher (docs/studies.md, "Memory"). From 32 runs a call on, the width of a call
  # changes the rounding of some reductions, so this is part of what identifies a process.
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
