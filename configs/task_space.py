"""The task-space settings every active-loop config shares (docs/design.md §2, ablation 4).

- `task_space`: `finite` (targets and evaluation on the environment's finite task set, mu on
  `target_tasks`) or `continuous` (`num_targets` tasks drawn per seed from mu, uniform on
  `target_region` = ((low, high), ...) of the task parameters; () = the whole space).
- `proposals`: the candidates AMF scores, one compiled program each: `grid` (the finite set),
  `grid:G` (G tasks on a product grid over the whole task box), `random` (`num_candidates` draws from mu per
  round), `continuous` (gradient ascent on AMF's score from the best `ascent.starts` of
  `num_candidates` draws).
"""
import ml_collections

from amf import proposals


def add(c: ml_collections.ConfigDict) -> None:
  c.task_space = "finite"
  c.target_region = ()
  c.num_targets = 16
  c.proposals = ("grid",)
  c.num_candidates = 16
  c.ascent = ml_collections.ConfigDict(proposals.Ascent()._asdict())
