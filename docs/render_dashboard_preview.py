"""Draw a picture of the Grafana dashboard without Grafana: every panel of
deploy/grafana/dashboards/learnupon-saml-broker.json, placed by its gridPos, with the data its queries return
from a real Prometheus. Used for docs/dashboard-preview.png where no Grafana could run; Grafana itself draws
the same queries differently (colours, units, legends).

    pip install matplotlib
    python docs/render_dashboard_preview.py --prometheus http://127.0.0.1:9090 --minutes 10 --out preview.png
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)
import requests  # noqa: E402

DASHBOARD = (
    Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards" / "learnupon-saml-broker.json"
)
ROW_HEIGHT = 0.42  # inches per Grafana grid unit
THRESHOLD_COLOURS = {"red": "#c62828", "orange": "#e69500", "green": "#2e7d32"}


def promql(expression: str, rate_interval: str) -> str:
    return expression.replace("$__rate_interval", rate_interval).replace('=~"$portal"', '=~".*"')


def legend(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template) or str(labels)


def query_range(url: str, expression: str, start: float, end: float, step: float) -> list[dict]:
    params = {"query": expression, "start": start, "end": end, "step": step}
    answer = requests.get(f"{url}/api/v1/query_range", params=params, timeout=30).json()
    return answer["data"]["result"] if answer.get("status") == "success" else []


def query(url: str, expression: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expression}, timeout=30).json()
    return answer["data"]["result"] if answer.get("status") == "success" else []


def colour_for(value: float, steps: list[dict]) -> str:
    colour = "#5b6475"
    for step in steps:
        if step["value"] is None or value >= step["value"]:
            colour = THRESHOLD_COLOURS.get(step["color"], step["color"])
    return colour


def draw_timeseries(ax, panel: dict, url: str, start: float, end: float, step: float, rate: str) -> None:
    for target in panel["targets"]:
        for series in query_range(url, promql(target["expr"], rate), start, end, step):
            points = [
                (float(t) - end, float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot([x / 60 for x in xs], ys, linewidth=1.4,
                        label=legend(target.get("legendFormat", ""), series["metric"]))  # fmt: skip
    ax.set_xlabel("minutes ago", fontsize=7)
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    if unit in ("s", "percentunit", "d"):
        ax.set_ylabel({"s": "seconds", "percentunit": "ratio", "d": "days"}[unit], fontsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", ncol=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#5b6475")


def draw_values(ax, panel: dict, url: str, rate: str) -> None:
    """stat and bargauge panels: the current value of each series, coloured by the panel's thresholds."""
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    rows = []
    for target in panel["targets"]:
        for series in query(url, promql(target["expr"], rate)):
            rows.append((legend(target.get("legendFormat", ""), series["metric"]), float(series["value"][1])))
    ax.set_xticks([])
    ax.set_yticks([])
    if not rows:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#5b6475")
        return
    if panel["type"] == "bargauge":
        labels, values = zip(*rows, strict=True)
        ax.barh(range(len(rows)), values, color=[colour_for(v, steps) for v in values])
        for i, (label, value) in enumerate(rows):
            ax.text(1, i, f"{label}: {value:.0f} d", va="center", fontsize=7, color="white")
        ax.invert_yaxis()
        return
    for i, (label, value) in enumerate(rows):
        y = 1 - (i + 0.5) / len(rows)
        ax.text(0.5, y, f"{value:g}  {label}", ha="center", va="center", fontsize=11, transform=ax.transAxes,
                color="white", bbox={"facecolor": colour_for(value, steps), "edgecolor": "none", "pad": 4})  # fmt: skip


def render(url: str, minutes: float, out: Path, rate: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    header = 0.9  # inches above the first row, for the figure's title
    inches = height * ROW_HEIGHT + header
    figure = plt.figure(figsize=(18, inches))
    figure.suptitle(f"{dashboard['title']} — preview drawn from the dashboard's queries on a real Prometheus "
                    "(docs/render_dashboard_preview.py), not a Grafana screenshot", fontsize=11)  # fmt: skip
    end = time.time()
    start = end - minutes * 60
    step = max(5.0, minutes * 60 / 200)
    unit = ROW_HEIGHT / inches  # one grid unit as a fraction of the figure's height

    def y_of(grid_y: float) -> float:  # figure coordinates grow upwards; Grafana's grid grows downwards
        return 1 - header / inches - grid_y * unit

    for panel in panels:
        grid = panel["gridPos"]
        if panel["type"] == "row":
            figure.text(0.01, y_of(grid["y"] + 0.7), panel["title"], fontsize=10, weight="bold")
            continue
        left, width = grid["x"] / 24 + 0.035, grid["w"] / 24 - 0.045
        bottom = y_of(grid["y"] + grid["h"]) + 0.9 * unit  # room for the x labels
        top = y_of(grid["y"]) - 0.6 * unit  # room for the panel's title
        ax = figure.add_axes((left, bottom, width, top - bottom))
        ax.set_title(panel["title"], fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if panel["type"] == "timeseries":
            draw_timeseries(ax, panel, url, start, end, step, rate)
        else:
            draw_values(ax, panel, url, rate)
    figure.savefig(out, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate-interval", default="1m", help="what Grafana's $__rate_interval stands for")
    parser.add_argument("--out", type=Path, default=Path("dashboard-preview.png"))
    args = parser.parse_args()
    render(args.prometheus, args.minutes, args.out, args.rate_interval)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
