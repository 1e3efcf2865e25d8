"""The paper's matched vs mismatched pre-training (docs/design.md §11).

Pre-training on every task (`uniform`: matched) or on half of them (`subset`: mismatched);
AMF against `uniform` and `rebalancing`. The paper: AMF's lead is clear under mismatch and
shrinks when pre-training covers all tasks. On reacher this is the regime check of the
testbed (docs/testbed.md); at the quick scale that is `--figures=active_finetune_reacher` (3.5 min
on 2 cores, most of it compilation), kept out of the quick plan.
"""
from configs.studies import active_finetune, integrator_gp, nn_envs, study


def get_config(scale: str = "paper"):
  envs = {"integrator_gp": integrator_gp(scale, ks=(6, 12), plot_ks=(6, 12))}
  envs.update({name: active_finetune(env, scale, mixes=("subset", "uniform"))
               for name, env in nn_envs(scale)})
  return study("matched_vs_mismatched", "Is AMF's lead over uniform selection larger when "
               "pre-training misses half of the tasks than when it covers them all?",
               reference={"method": "uniform"}, envs=envs, scale=scale,
               outside=("rebalancing",), gap=("amf", "uniform"))
