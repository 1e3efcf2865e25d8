"""Seed ablation 1: the importance weights of AMF's target occupancy (docs/design.md §2, §9).

`importance` (the paper's: pre-training demonstrations reweighted by the policy's likelihood
ratio) against `uniform` weights and the `learned` density-ratio classifier; `rollout` (the
policy's own states, simulated) and `oracle` (the expert's, privileged) are outside references.
All estimators are variants of one AMF program (`lax.switch`); `subset` pre-training on half of
the tasks, where the target occupancy is furthest from the pre-training data.
"""
from configs.studies import active_finetune, integrator_gp, nn_envs, pilot_seeds, study

ESTIMATORS = ("importance", "uniform", "learned", "rollout", "oracle")


def get_config(scale: str = "paper"):
  # Five estimators are five AMF arms (`learned` trains a classifier, `rollout` and `oracle`
  # simulate); the quick scale asks for 8 demonstrations.
  quick = dict(budget=8) if scale == "quick" else {}
  envs = {"integrator_gp": integrator_gp(scale, methods=("amf", "uniform"), estimators=ESTIMATORS,
                                         ks=(6,), plot_ks=(6,), **quick)}
  envs.update({name: active_finetune(env, scale, methods=("amf", "uniform"),
                                     estimators=ESTIMATORS, mixes=("subset",),
                                     **pilot_seeds(env, scale))
               for name, env in nn_envs(scale)})
  return study("importance_weights", "Do importance weights on the pre-training data beat "
               "uniform weights and a learned density ratio as AMF's target occupancy?",
               reference={"method": "amf/importance"}, envs=envs, scale=scale,
               outside=("amf/rollout", "amf/oracle"))
