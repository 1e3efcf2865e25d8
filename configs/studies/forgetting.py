"""The paper's forgetting-mitigation study: AMF-NN needs it to show its benefit (design.md §11).

`adaptive_prior` (the default), `isolation`, `replay` and `none`, each with AMF and `uniform`
selection under `subset` pre-training; the mode is the learner's code, so one process each.
"""
from configs.studies import active_finetune, nn_envs, study

MODES = ("adaptive_prior", "isolation", "replay", "none")


def get_config(scale: str = "paper"):
  processes = {mode: dict(forgetting=mode) for mode in MODES}
  envs = {name: active_finetune(env, scale, processes, methods=("amf", "uniform"),
                               mixes=("subset",))
          for name, env in nn_envs(scale)}
  return study("forgetting", "Does AMF's lead over uniform selection need a forgetting "
               "mitigation, and which one?", reference={"method": "uniform"}, envs=envs,
               scale=scale)
