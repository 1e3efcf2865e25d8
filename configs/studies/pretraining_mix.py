"""Seed ablation 3: the pre-training data distribution (docs/design.md §9).

`uniform`, `skewed` (Zipf) with strengths 0.5, 1 and 2, and `subset` covering a quarter, half
and three quarters of the tasks; AMF against `uniform` and the privileged `rebalancing` under
each. Every mix is a value variant (`mixes` like `skewed:0.5`, `subset:2`) of the same programs;
the report draws the AMF - uniform gap against the mix.
"""
from amf import envs
from configs.studies import active_finetune, nn_envs, num_tasks, study


def mixes(k: int) -> tuple[str, ...]:
  return ("uniform", "skewed:0.5", "skewed:1", "skewed:2", f"subset:{k // 4}",
          f"subset:{k // 2}", f"subset:{3 * k // 4}")


# On a `costly` environment (pusher) the study in one process outlasts a sitting, and a killed
# process's checkpoints are not committed, so each mix is its own process (`shards`, which the
# report reads as one) and the study advances in pieces that survive (docs/studies.md, "Shards").


def get_config(scale: str = "paper"):
  runs = {}
  for name, env in nn_envs(scale):
    methods, all_mixes = ("amf", "uniform", "rebalancing"), mixes(num_tasks(env))
    if envs.testbed(env).costly:
      # Half the tasks spelled "subset", as `rebalancing` and `forgetting` spell it: that
      # shard's arms are theirs (amf.arms), so it runs nothing.
      half = f"subset:{num_tasks(env) // 2}"
      shards = {mix.replace(":", "-").replace(".", "_"): dict(
          mixes=("subset",) if mix == half else (mix,)) for mix in all_mixes}
      runs[name] = active_finetune(env, scale, shards, shards=True, methods=methods)
    else:
      runs[name] = active_finetune(env, scale, methods=methods, mixes=all_mixes)
  return study("pretraining_mix", "How does AMF's lead over uniform selection depend on the "
               "pre-training mix: large when it misses tasks, gone when it covers them all?",
               reference={"method": "uniform"}, envs=runs, scale=scale,
               outside=("rebalancing",), gap=("amf", "uniform"))
