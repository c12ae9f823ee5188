"""Sweeps in the report: the latency-throughput curve with the limits drawn, the Pareto front
of tokens/s per user against tokens/s per device, and a table of every point.

A results folder holds sweeps written by ``llmperf sweep`` under ``sweep/<engine>-<scenario>/
sweep.json`` (``loadgen.sweep``); each becomes two figures and one table.
"""

from __future__ import annotations

from pathlib import Path

from ..loadgen.sweep import read_sweep
from .plots import FAIL_COLOR, NEUTRAL_COLOR, PASS_COLOR, Plot, _encode, _new_figure

SWEEP_GLOB = "sweep/*/sweep.json"
CURVE_PERCENTILES = ("p50", "p99")


def find_sweeps(results: str | Path) -> list[tuple[str, dict]]:
    """(label, sweep.json data) for every sweep beside the results; [] when there is none."""
    root = Path(results)
    root = root if root.is_dir() else root.parent
    found = []
    for path in sorted(root.glob(SWEEP_GLOB)):
        data = read_sweep(path)
        if data["points"]:
            found.append((path.parent.name, data))
    return found


def _qps_points(data: dict) -> list[dict]:
    return [p for p in data["points"] if p["kind"] == "qps"]


def curve_plot(label: str, data: dict) -> Plot | None:
    # In order of offered load: past capacity completed tokens/s falls back while latency climbs.
    points = sorted(_qps_points(data), key=lambda p: p["load"])
    if not points:
        return None
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure = _new_figure(9.5, 3.6)
    axes_list = figure.subplots(1, 2, squeeze=False)[0]
    limits = data.get("limits_ms", {})
    xs = [p["stats"]["tokens_per_second"] for p in points]
    for axes, name in zip(axes_list, ("ttft", "tpot")):
        for style, percentile in zip(("-o", "--s"), CURVE_PERCENTILES):
            ys = [p["stats"]["latency_ms"][name].get(percentile) for p in points]
            axes.plot(xs, [float("nan") if y is None else y for y in ys], style, color=NEUTRAL_COLOR if
                      percentile == "p50" else "#1565c0", label=f"{name.upper()} {percentile}")
        for x, point in zip(xs, points):
            result = (point.get("loadgen") or {}).get("result")
            y = point["stats"]["latency_ms"][name].get("p99")
            if y is not None:
                axes.annotate(f"{point['load']:g} qps", (x, y), fontsize=7, textcoords="offset points",
                              xytext=(3, 4), color=FAIL_COLOR if result == "INVALID" else PASS_COLOR)
        limit = limits.get(name) or 0
        if limit > 0:
            axes.axhline(limit, color=FAIL_COLOR, linestyle=":", label=f"limit {limit:g} ms")
        axes.set_xlabel("completed tokens/s")
        axes.set_ylabel("milliseconds")
        axes.set_yscale("log")
        axes.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.set_title(f"{name.upper()} against throughput", fontsize=10)
        axes.legend(fontsize=7)
    return Plot(f"Latency against throughput: {label}",
                "Each point is one LoadGen Server run of the sweep, joined in order of target_qps (labelled: "
                "green VALID, red INVALID); TTFT and TPOT at p50 and p99 from the engine's own token times "
                "against completed tokens/s; the dotted line is the profile's limit.", _encode(figure))


def pareto_plot(label: str, data: dict) -> Plot | None:
    points = [p for p in data["points"] if p["stats"].get("tokens_per_second_per_user")]
    if not points:
        return None
    figure = _new_figure(6.5, 4.0)
    axes = figure.subplots()
    for point in points:
        x, y = point["tokens_per_second_per_device"], point["stats"]["tokens_per_second_per_user"]
        axes.scatter([x], [y], color=PASS_COLOR if point.get("pareto") else NEUTRAL_COLOR, zorder=3)
        axes.annotate(f"{point['load']:g} {'qps' if point['kind'] == 'qps' else 'in flight'}", (x, y), fontsize=7,
                      textcoords="offset points", xytext=(3, 4))
    front = sorted((p for p in points if p.get("pareto")), key=lambda p: p["tokens_per_second_per_device"])
    axes.plot([p["tokens_per_second_per_device"] for p in front],
              [p["stats"]["tokens_per_second_per_user"] for p in front], "-", color=PASS_COLOR, label="Pareto front")
    axes.set_xlabel("tokens/s per device")
    axes.set_ylabel("tokens/s per user (1 / median TPOT)")
    axes.legend(fontsize=7)
    return Plot(f"Pareto front: {label}",
                "Each point of the sweep: the decode speed one user sees against the device's total output; "
                "green points are on the front (no other point has more of both).", _encode(figure))


def sweep_plots(sweeps: list[tuple[str, dict]]) -> list[Plot]:
    plots = []
    for label, data in sweeps:
        plots.extend(plot for plot in (curve_plot(label, data), pareto_plot(label, data)) if plot is not None)
    return plots


def sweep_tables(sweeps: list[tuple[str, dict]], esc, table) -> str:
    """The HTML table of every point (``esc`` and ``table`` are html.py's helpers)."""
    if not sweeps:
        return ""
    blocks = []
    for label, data in sweeps:
        rows = []
        for point in data["points"]:
            stats, lat = point["stats"], point["stats"]["latency_ms"]
            result = (point.get("loadgen") or {}).get("result", "")
            unmet = (point.get("loadgen") or {}).get("unmet") or []
            shown = f"{result} (not satisfied: {', '.join(unmet)})" if unmet else result
            cells = [esc(f"{point['load']:g} {'qps' if point['kind'] == 'qps' else 'in flight'}"), esc(shown),
                     esc(f"{stats['tokens_per_second']:.1f}"), esc(f"{stats['samples_per_second']:.2f}"),
                     esc(f"{stats['goodput']:.2f} ({stats['good_queries']}/{stats['queries']})")]
            cells += [esc("/".join("-" if lat[name].get(p) is None else f"{lat[name][p]:.0f}"
                                   for p in ("p50", "p90", "p99"))) for name in ("ttft", "tpot", "itl", "e2e")]
            rows.append(("fail" if result == "INVALID" else "", cells))
        limits = data.get("limits_ms", {})
        header = ("load", "LoadGen", "tokens/s", "samples/s", "goodput/s", "TTFT p50/p90/p99 ms",
                  "TPOT ms", "ITL ms", "E2E ms")
        blocks.append(f"<h3>{esc(label)}</h3><p>Limits: TTFT {esc(limits.get('ttft'))} ms, TPOT "
                      f"{esc(limits.get('tpot'))} ms (goodput counts the queries within both).</p>"
                      + table(header, rows, numeric={2, 3, 4}))
    return "<h2>Sweeps</h2>" + "".join(blocks)
