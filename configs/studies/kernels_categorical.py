"""Seed ablation 2 on a head where it has content: the kernels with a categorical action head.

With the testbed's fixed-std Gaussian head `loss_gradient` is the last-layer kernel plus a bias
(docs/design.md §3), so the `kernels` study cannot tell them apart. The categorical head
(`head=categorical`) makes each label's log-likelihood gradient depend on the label, and its
`loss_gradient` kernel weighs the last-layer features by the bins' covariance. The paper's
kernel against `last_layer`, `ntk`, `linear` and `random_walk`, and `uniform` selection, all with
that head, under `subset` pre-training; environments' `skip_kernels` as in `kernels`. The
privileged `rebalancing` checks that the head keeps the testbed's allocation regime.
"""
from configs.studies import kernels, study

KERNELS = ("loss_gradient", "last_layer", "ntk", "linear", "random_walk")


def get_config(scale: str = "paper"):
  return study("kernels_categorical", "With a head whose likelihood gradient depends on the "
               "label (categorical), is the paper's loss_gradient kernel ahead of last_layer?",
               reference={"method": "amf/loss_gradient"},
               envs=kernels.runs(scale, KERNELS, methods=("amf", "uniform", "rebalancing"),
                                 head="categorical"),
               scale=scale, outside=("rebalancing",))
