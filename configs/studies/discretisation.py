"""Seed ablation 4: what discretising the task space costs AMF (docs/design.md §2, §9).

AMF scores candidates from a proposal: `grid:G`, a product grid of G tasks over the whole task
box (every task parameter: angle and radius on reacher, angle and push distance on pusher),
from coarser than the learner's transfer width (`experiments/transfer.py`) to finer; `random`,
G fresh draws from mu each round; or `continuous`, gradient ascent on alpha from the best of
the draws. mu is broad, uniform on the whole task space, and pre-training covers part of it
(the first finite tasks), so where the demonstrations go matters. `uniform` (draws from mu)
and the privileged `coverage` (the target farthest from every demonstration) are outside
references. The question: from which G on does AMF on a grid do as well as without one?
"""
from amf import envs
from configs.studies import active_finetune, integrator_gp, nn_envs, num_tasks, study

PROPOSALS = ("grid:2", "grid:4", "grid:8", "grid:16", "grid:32", "grid:64", "random",
             "continuous")
# The continuous search: the best 4 of 16 draws, 20 Adam steps each (one factorisation of the
# data per round, so a step pays for its own task's inputs only).
ASCENT = dict(starts=4, steps=20, learning_rate=0.05)


def mix(env: str) -> str:
  """Pre-training on the testbed's `first_tasks` finite tasks (default half of them): the
  integrator's 3 of 12 (0-60 degrees), reacher's 4 of 8 (0-135 degrees at radius 0.15),
  pusher's 2 of 4 (0 and 0.4 rad at 20 cm)."""
  tb = envs.testbed(env)
  return f"subset:{tb.first_tasks or num_tasks(env) // 2}"


def _settings(scale: str) -> dict:
  return dict(methods=("amf", "uniform", "coverage"), task_space="continuous",
              target_region=(), num_targets=16, proposals=PROPOSALS, num_candidates=16,
              num_seeds=10 if scale == "paper" else 3, ascent=ASCENT)


def get_config(scale: str = "paper"):
  runs = {"integrator_gp": integrator_gp(scale, ks=(3,), plot_ks=(3,), **_settings(scale))}
  runs.update({name: active_finetune(env, scale, mixes=(mix(env),), **_settings(scale),
                                     **(envs.testbed(env).studies.get("discretisation", {})
                                        if scale == "paper" else {}))
               for name, env in nn_envs(scale, quick=False)})
  return study("discretisation", "What does scoring a grid of G tasks instead of the whole "
               "task space cost AMF, when mu covers all of it?",
               reference={"method": "amf/continuous"}, envs=runs, scale=scale,
               outside=("uniform", "coverage"))
