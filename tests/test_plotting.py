"""Each figure writes a PNG from small synthetic rows, drawing each method in its colour, and
rejects bad requests."""
import matplotlib.image
import numpy as np
import pytest

from amf import plotting

METHODS = ("amf", "uniform")
VARIANTS = ("k=1", "k=2", "k=3")
SEEDS, ROUNDS, TASKS = 3, 4, 5


@pytest.fixture(name="rows")
def _rows():
  rng = np.random.default_rng(0)
  return [{"env": "toy", "method": m, "variant": v, "seed": s, "round": r, "num_demos": 4 * r,
           "return": float(-10 + 3 * r + rng.normal()),
           "success": float(np.clip(r / ROUNDS + (m == "amf") * 0.1 + 0.05 * rng.normal(), 0, 1))}
          for m in METHODS for v in VARIANTS for s in range(SEEDS) for r in range(ROUNDS)]


@pytest.fixture(name="alloc_rows")
def _alloc_rows():
  rng = np.random.default_rng(1)
  return [{"env": "toy", "method": m, "variant": v, "seed": s, "round": r,
           "task": int(rng.integers(TASKS))}
          for m in METHODS for v in VARIANTS for s in range(SEEDS) for r in range(1, ROUNDS)
          for _ in range(4)]


def _is_png(path) -> bool:
  return path.stat().st_size > 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _pixels(path, color: str) -> int:
  """How many pixels of the PNG at `path` have exactly the colour `color` ("#rrggbb")."""
  rgb = np.round(matplotlib.image.imread(path)[..., :3] * 255).astype(int)
  return int(np.all(rgb == [int(color[i:i + 2], 16) for i in (1, 3, 5)], -1).sum())


def _draws(path, drawn, absent=("round_robin", "rebalancing", "uncertainty")) -> bool:
  """Lines, markers or bars in the fixed colour of each method of `drawn`; none of `absent`'s."""
  colors = plotting.METHOD_COLORS
  return (all(_pixels(path, colors[m]) > 50 for m in drawn)
          and not any(_pixels(path, colors[m]) for m in absent))


def test_curves(rows, tmp_path):
  assert _is_png(plotting.curves(rows, tmp_path / "curves.png"))
  assert _is_png(plotting.curves(rows, tmp_path / "demos.png", value="return", x="num_demos",
                                 variants=["k=3", "k=1"]))
  assert _draws(tmp_path / "curves.png", METHODS) and _draws(tmp_path / "demos.png", METHODS)


def test_gap_vs_variant(rows, tmp_path):
  path = plotting.gap_vs_variant(rows, tmp_path / "gap.png", "success", "amf", "uniform",
                                 variant_order=["k=3", "k=2", "k=1"])
  assert _is_png(path)
  assert _draws(path, ["amf"])  # the gap in the colour of its first method


def test_allocation_heatmaps(alloc_rows, tmp_path):
  assert _is_png(plotting.allocation_heatmaps(alloc_rows, tmp_path / "alloc.png", TASKS))
  assert _is_png(plotting.allocation_heatmaps(alloc_rows, tmp_path / "one.png", TASKS,
                                              variants=["k=2"]))


def test_task_histograms_draw_each_method_over_the_task_space(tmp_path):
  rng = np.random.default_rng(0)
  rows = [dict(method=m, variant="uniform", seed=s, round=r, c0=float(rng.uniform(1.5, 2.5)))
          for m in ("amf", "uniform") for s in range(3) for r in range(1, 5)]
  path = plotting.task_histograms(rows, tmp_path / "hist.png", (0.0, 6.3), region=(1.7, 2.1),
                                  grid=np.linspace(0, 6, 4))
  assert _is_png(path) and _draws(path, ["amf", "uniform"])
  with pytest.raises(ValueError, match="c1"):
    plotting.task_histograms(rows, tmp_path / "bad.png", (0.0, 1.0), column="c1")


def test_bars(rows, tmp_path):
  assert _is_png(plotting.bars(rows, tmp_path / "bars.png", "return"))
  assert _draws(tmp_path / "bars.png", METHODS)


@pytest.mark.parametrize("plot", [
    lambda rows, path: plotting.curves(rows, path, value="nope"),
    lambda rows, path: plotting.gap_vs_variant(rows, path, "nope", "amf", "uniform"),
    lambda rows, path: plotting.bars(rows, path, "nope"),
])
def test_unknown_value_column_raises(rows, tmp_path, plot):
  with pytest.raises(ValueError, match="unknown column 'nope'"):
    plot(rows, tmp_path / "x.png")


@pytest.mark.parametrize("plot", [
    lambda rows, alloc, path: plotting.curves(rows, path, variants=["k=9"]),
    lambda rows, alloc, path: plotting.gap_vs_variant(rows, path, "success", "amf", "uniform",
                                                      variant_order=["k=1", "k=9"]),
    lambda rows, alloc, path: plotting.allocation_heatmaps(alloc, path, TASKS, variants=["k=9"]),
])
def test_unknown_variant_raises(rows, alloc_rows, tmp_path, plot):
  with pytest.raises(ValueError, match=r"unknown variants \['k=9'\]"):
    plot(rows, alloc_rows, tmp_path / "x.png")
  assert not (tmp_path / "x.png").exists()


def test_allocation_task_out_of_range_raises(alloc_rows, tmp_path):
  with pytest.raises(ValueError, match="outside"):
    plotting.allocation_heatmaps(alloc_rows, tmp_path / "x.png", num_tasks=2)


def test_method_colors_are_fixed_and_distinct():
  colors = plotting.method_colors(["uniform", "amf[importance]", "amf[greedy]", "amf"])
  assert colors["amf"] == plotting.METHOD_COLORS["amf"]
  assert len(set(colors.values())) == 4
  again = plotting.method_colors(["amf[importance]"])
  assert again["amf[importance]"] == colors["amf[importance]"]
