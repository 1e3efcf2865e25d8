"""Seed ablation 4: removing the task-space discretisation (docs/design.md §2, §9; issue 10).

AMF scores candidates from a proposal: a `grid` of G tasks spread over the task space (G in
{2, 4, 8, 16}; the finite set is one grid), `random` draws from mu each round, or `continuous`
(gradient ascent on alpha from the best of the draws). The targets are tasks drawn from a
continuous mu on a region that the grids cover poorly: an arc between grid points, and on
reacher and pusher a radius / push distance off the grid's. `uniform` (draws from mu) and the
privileged `coverage` (the target farthest from every demonstration) are outside references.
"""
from configs.studies import active_finetune, integrator_gp, nn_envs, study

# mu's region per environment: ((low, high) per task parameter).
REGIONS = {
    "integrator": ((1.75, 1.92),),                 # 100-110 degrees; grid points at 90, 120
    "reacher": ((0.25, 0.55), (0.09, 0.11)),       # between 0 and 45 degrees, radius 0.1
    "pusher": ((0.2, 0.32), (0.13, 0.16)),         # between 0 and 0.4 rad, 13-16 cm
}
PROPOSALS = ("grid:2", "grid:4", "grid:8", "grid:16", "random", "continuous")
# The continuous search: 4 starts x 20 Adam steps; on the brax environments 2 x 10, as each
# step recomputes the network kernel over all the data (the cost is in docs/continuous.md).
ASCENT = {"integrator": dict(starts=4, steps=20), "reacher": dict(starts=2, steps=10),
          "pusher": dict(starts=2, steps=10)}


def _settings(env: str, scale: str) -> dict:
  return dict(methods=("amf", "uniform", "coverage"), task_space="continuous",
              target_region=REGIONS[env], num_targets=16, proposals=PROPOSALS,
              num_candidates=16, num_seeds=10 if scale == "paper" else 3,
              ascent=dict(ASCENT[env], learning_rate=0.05))


# Pre-training: on the integrator the first 3 of 12 tasks (0-60 degrees), so the arc is
# uncovered; on reacher and pusher all their tasks (8 and 4), whose goals lie off mu's radius /
# push distance.
MIXES = {"integrator": ("subset:3",), "reacher": ("uniform",), "pusher": ("uniform",)}


def get_config(scale: str = "paper"):
  envs = {"integrator_gp": integrator_gp(scale, ks=(3,), plot_ks=(3,),
                                         **_settings("integrator", scale))}
  envs.update({name: active_finetune(env, scale, mixes=MIXES[env], **_settings(env, scale))
               for name, env in nn_envs(scale, quick=())})
  return study("discretisation", "Does asking for any task of a continuous space (gradient "
               "ascent on alpha) beat scoring a grid of G candidates or random draws from mu?",
               reference={"method": "amf/continuous"}, envs=envs, scale=scale,
               outside=("uniform", "coverage"))
