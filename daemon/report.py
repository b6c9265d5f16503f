"""`skilld report`: one self-contained HTML page that answers "is skilld learning, and what do I do next?".

The caller gathers plain data into `ReportData`; this module only turns it into sentences, figures and HTML,
so it can be tested without a daemon and rendered in a worker thread. Figures use matplotlib's object API
(`Figure`, never `pyplot`), which keeps no global state and is therefore safe off the main thread. Every
image is embedded as a base64 PNG data URI and the styles are inline: the page opens from a mail attachment
or an air-gapped machine, and it loads nothing from anywhere. Every string that may come from a user (a
question, a skill name, a topic) goes through `html.escape`.

How `verdict` decides, in order; the first five sentences that apply are kept:
1. Learning: skills were learned in the window ("skilld is learning"), or none were, named by the biggest
   reason: nothing observed, nothing worth extracting, or most extractions rejected / parked / empty.
2. Usefulness: served skills whose whole interval lies below 0.5 are "confidently unhelpful".
3. Drift: every drifted indicator is named, with the largest PSI.
4. Fine-tuning: the newest model version with a held-out loss worse than the one before it.
5. Gaps: the top gap by score (asked often with no skill, or only a retired one, to answer it).
6. Failures: the largest cluster of failed interactions.
When only the first applies, a second sentence says that nothing else needs attention.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.dates import DateFormatter, DayLocator, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

OUTCOMES = ("stored", "no_skill", "rejected", "parked")  # gate outcomes, in stacking order
COMPONENTS = ("outcome", "feedback", "reusability", "complexity", "novelty")
PSI_WATCH, PSI_ACT = 0.1, 0.2  # the usual PSI thresholds: below 0.1 stable, above 0.2 a real shift
UNHELPFUL_BELOW = 0.5  # a served skill is confidently unhelpful when its whole interval lies below this
TOP_SKILLS = 20
DPI = 100
COLOURS = {"stored": "#2b8a3e", "no_skill": "#adb5bd", "rejected": "#c92a2a", "parked": "#e67700"}
MAIN = "#1f77b4"


@dataclass
class ReportData:
    """Everything the report shows, gathered by the caller for the last `since_days` days."""

    generated_at: datetime
    since_days: int
    headline: dict[str, Any] = field(default_factory=dict)
    value_scores: list[float] = field(default_factory=list)
    components: dict[str, list[float]] = field(default_factory=dict)
    skills_per_day: list[tuple[date, int]] = field(default_factory=list)
    extraction_outcomes_per_day: list[tuple[date, dict[str, int]]] = field(default_factory=list)
    usefulness: list[tuple[str, float, float, float, int]] = field(default_factory=list)
    dataset_per_day: list[tuple[date, int]] = field(default_factory=list)
    extraction_seconds: list[float] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    finetune: list[dict[str, Any]] = field(default_factory=list)
    experiments: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- verdict


def _outcome_totals(data: ReportData) -> dict[str, int]:
    totals = dict.fromkeys(OUTCOMES, 0)
    for _, counts in data.extraction_outcomes_per_day:
        for outcome, count in counts.items():
            totals[outcome] = totals.get(outcome, 0) + int(count)
    return totals


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _learning_sentence(data: ReportData) -> str:
    """Whether skills were learned, and if not, the biggest reason and where to look."""
    window = f"in the last {_plural(data.since_days, 'day')}"
    learned = sum(count for _, count in data.skills_per_day)
    totals = _outcome_totals(data)
    attempts = sum(totals.values())
    if learned:
        rate = f" ({totals['stored'] / attempts:.0%} of {_plural(attempts, 'extraction')} stored)" if attempts else ""
        were = "was" if learned == 1 else "were"
        return f"skilld is learning: {_plural(learned, 'skill')} {were} learned {window}{rate}."
    if not attempts and not int(data.headline.get("interactions", 0) or 0):
        return f"Nothing was observed {window}: no interaction was recorded; check the sources with `skilld status`."
    if not attempts:
        return (
            f"No skill was learned {window}: no interaction scored high enough to extract from; "
            "look at the value scores below."
        )
    worst = max(("rejected", "parked", "no_skill"), key=lambda outcome: totals.get(outcome, 0))
    count = totals.get(worst, 0)
    ran = f"{_plural(count, 'extraction')} {'was' if count == 1 else 'were'}"
    detail = {
        "rejected": f"{ran} rejected by the quality gate; see the rejected reasons with `skilld status`",
        "parked": f"{ran} parked (the extraction model could not run them); see why with `skilld status`",
        "no_skill": f"{_plural(count, 'extraction')} found no reusable skill; more varied work gives it more to learn",
    }[worst]
    if not count:  # stored outcomes without a learned skill: the counts disagree, so say only what is known
        detail = f"{_plural(attempts, 'extraction')} ran and none stored a skill; check `skilld status`"
    return f"No skill was learned {window}: {detail}."


def _unhelpful_sentence(data: ReportData) -> str | None:
    unhelpful = [row for row in data.usefulness if row[3] < UNHELPFUL_BELOW]
    if not unhelpful:
        return None
    names = ", ".join(row[0] for row in sorted(unhelpful, key=lambda row: row[1])[:3])
    verb = "is" if len(unhelpful) == 1 else "are"
    return f"{_plural(len(unhelpful), 'served skill')} {verb} confidently unhelpful ({names}); review or retire them."


def _drift_sentence(data: ReportData) -> str | None:
    drifted = [row for row in data.drift if row.get("drifted")]
    if not drifted:
        return None
    worst = max(float(row.get("psi") or 0.0) for row in drifted)
    names = ", ".join(str(row.get("name")) for row in drifted)
    return f"Drift in {names} (PSI up to {worst:.2f}): the incoming data no longer looks like the baseline."


def _finetune_sentence(data: ReportData) -> str | None:
    versions = [row for row in data.finetune if _number(row.get("eval_loss")) is not None]
    if len(versions) < 2:
        return None
    before, after = float(versions[-2]["eval_loss"]), float(versions[-1]["eval_loss"])
    if after <= before:
        return None
    return (
        f"The newest fine-tuned model ({versions[-1].get('id')}) is worse on held-out data "
        f"({before:.3f} → {after:.3f}); keep the previous version."
    )


def _gap_sentence(data: ReportData) -> str | None:
    if not data.gaps:
        return None
    top = max(data.gaps, key=lambda gap: float(gap.get("score") or 0.0))
    asked = int(top.get("asked") or 0)
    cover = "only a retired skill covers it" if top.get("only_retired") else "no skill answers it"
    return f"Top gap: “{top.get('topic')}” was asked {_plural(asked, 'time')} and {cover}."


def _failure_sentence(data: ReportData) -> str | None:
    if not data.failures:
        return None
    top = max(data.failures, key=lambda cluster: int(cluster.get("size") or 0))
    size = _plural(int(top.get("size") or 0), "interaction")
    return f"The largest failure cluster ({size}) looks like: “{top.get('representative')}”."


def verdict(data: ReportData) -> list[str]:
    """Two to five plain sentences: is skilld learning, and what to do next (rules in the module docstring)."""
    rules: list[Callable[[ReportData], str | None]] = [
        _unhelpful_sentence,
        _drift_sentence,
        _finetune_sentence,
        _gap_sentence,
        _failure_sentence,
    ]
    sentences = [_learning_sentence(data)]
    sentences += [sentence for rule in rules if (sentence := rule(data))]
    if len(sentences) == 1:
        unmeasured = any(str(row.get("reason", "")).startswith("too few samples") for row in data.drift)
        drift = "drift not measured yet (too few interactions in a window)" if unmeasured else "no drift"
        sentences.append(f"Nothing else needs attention: {drift}, no confidently unhelpful skill, no open gap.")
    return sentences[:5]


# ---------------------------------------------------------------------------------------------- figures


def _number(value: Any) -> float | None:
    """A finite float, or None for anything missing or not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _label(text: object, limit: int = 40) -> str:
    """A user string safe for matplotlib: `$` would start mathtext, and long names would crowd the axis."""
    short = str(text) if len(str(text)) <= limit else str(text)[: limit - 1] + "…"
    return short.replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _no_data(title: str) -> bytes:
    """A small figure that says so, so an empty series never breaks the report."""
    figure = Figure(figsize=(4, 1.4))
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.set_title(title, fontsize=10)
    axes.text(0.5, 0.4, "no data yet", ha="center", va="center", fontsize=12, color="#868e96")
    return _png(figure)


def _style(axes: Axes, title: str, xlabel: str = "", ylabel: str = "") -> None:
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)


def _days(series: Sequence[tuple[date, Any]]) -> list[float]:
    """The days of a series as matplotlib date numbers (`matplotlib.dates` has no type annotations)."""
    return [float(date2num(day)) for day, _ in series]  # type: ignore[no-untyped-call]


def _day_axis(axes: Axes, days: list[float]) -> None:
    """Whole days on the x axis, at most about eight ticks, never an hour between two days."""
    axes.set_xlim(min(days) - 0.6, max(days) + 0.6)
    span = int(max(days) - min(days)) + 1
    axes.xaxis.set_major_locator(DayLocator(interval=max(1, math.ceil(span / 8))))  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(DateFormatter("%b %d"))  # type: ignore[no-untyped-call]


def _count_axis(axes: Axes, highest: float) -> None:
    """A y axis of counts: from zero, whole numbers, and not collapsed when every count is zero."""
    axes.set_ylim(0, max(1.0, highest) * 1.08)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _scores_figure(data: ReportData) -> bytes:
    series = [("value score", data.value_scores)] + [(name, data.components.get(name, [])) for name in COMPONENTS]
    if not any(values for _, values in series):
        return _no_data("Value scores")
    figure = Figure(figsize=(9, 4.6), layout="constrained")
    for axes, (name, values) in zip(figure.subplots(2, 3).flat, series, strict=True):
        _style(axes, name)
        if values:
            axes.hist(values, bins=20, color=MAIN if name == "value score" else "#74a9cf")
        else:
            axes.set_xticks([])
            axes.set_yticks([])
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", color="#868e96", transform=axes.transAxes)
    return _png(figure)


def _per_day_figure(series: Sequence[tuple[date, int]], title: str, ylabel: str, line: bool = False) -> bytes:
    if not series:
        return _no_data(title)
    figure = Figure(figsize=(9, 3), layout="constrained")
    axes = figure.add_subplot()
    days, counts = _days(series), [count for _, count in series]
    if line:
        axes.plot(days, counts, color=MAIN, marker="o", markersize=3)
        axes.fill_between(days, counts, color=MAIN, alpha=0.15)
    else:
        axes.bar(days, counts, color=MAIN, width=0.8)
    _style(axes, title, ylabel=ylabel)
    _day_axis(axes, days)
    _count_axis(axes, max(counts))
    return _png(figure)


def _outcomes_figure(data: ReportData) -> bytes:
    title = "Quality gate outcomes per day"
    if not data.extraction_outcomes_per_day:
        return _no_data(title)
    extra = sorted({key for _, counts in data.extraction_outcomes_per_day for key in counts} - set(OUTCOMES))
    figure = Figure(figsize=(9, 3), layout="constrained")
    axes = figure.add_subplot()
    days = _days(data.extraction_outcomes_per_day)
    bottom = [0] * len(days)
    for outcome in (*OUTCOMES, *extra):
        counts = [int(day_counts.get(outcome, 0)) for _, day_counts in data.extraction_outcomes_per_day]
        axes.bar(days, counts, bottom=bottom, width=0.8, label=_label(outcome), color=COLOURS.get(outcome))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _style(axes, title, ylabel="extractions")
    axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _day_axis(axes, days)
    _count_axis(axes, max(bottom))
    return _png(figure)


def _usefulness_figure(data: ReportData) -> bytes:
    title = f"Usefulness of served skills (mean and interval, top {TOP_SKILLS} by evidence)"
    if not data.usefulness:
        return _no_data("Usefulness of served skills")
    rows = sorted(data.usefulness, key=lambda row: (-row[4], row[0]))[:TOP_SKILLS][::-1]
    figure = Figure(figsize=(9, 1.2 + 0.3 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    means = [row[1] for row in rows]
    errors = [[max(0.0, row[1] - row[2]) for row in rows], [max(0.0, row[3] - row[1]) for row in rows]]
    colours = ["#c92a2a" if row[3] < UNHELPFUL_BELOW else MAIN for row in rows]
    axes.errorbar(means, positions, xerr=errors, fmt="none", ecolor="#adb5bd", capsize=3)
    axes.scatter(means, positions, color=colours, zorder=3)
    axes.axvline(UNHELPFUL_BELOW, color="#868e96", linestyle=":", linewidth=1)
    axes.set_yticks(positions, [f"{_label(row[0])} (n={row[4]})" for row in rows])
    axes.set_xlim(0, 1)
    _style(axes, title, xlabel="share of serves that helped")
    return _png(figure)


def _latency_figure(data: ReportData) -> bytes:
    title = "Extraction latency"
    if not data.extraction_seconds:
        return _no_data(title)
    figure = Figure(figsize=(9, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.hist(data.extraction_seconds, bins=30, color=MAIN)
    median = sorted(data.extraction_seconds)[len(data.extraction_seconds) // 2]
    axes.axvline(median, color="#212529", linestyle="--", linewidth=1, label=f"median {median:.1f} s")
    axes.legend(fontsize=8, frameon=False)
    _style(axes, title, xlabel="seconds per extraction", ylabel="extractions")
    return _png(figure)


def _drift_figure(data: ReportData) -> bytes:
    title = "Drift indicators (population stability index)"
    rows = [(row, psi) for row in data.drift if (psi := _number(row.get("psi"))) is not None]
    if not rows:
        return _no_data("Drift indicators")
    figure = Figure(figsize=(9, 1.2 + 0.35 * len(rows)), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    colours = ["#c92a2a" if row.get("drifted") else MAIN for row, _ in rows]
    axes.barh(positions, [psi for _, psi in rows], color=colours)
    axes.axvline(PSI_WATCH, color="#e67700", linestyle="--", linewidth=1, label=f"{PSI_WATCH} watch")
    axes.axvline(PSI_ACT, color="#c92a2a", linestyle="--", linewidth=1, label=f"{PSI_ACT} act")
    axes.set_yticks(positions, [_label(row.get("name")) for row, _ in rows])
    axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(axes, title, xlabel="PSI")
    return _png(figure)


def _finetune_figure(data: ReportData) -> bytes:
    title = "Fine-tuning: held-out loss per model version"
    rows = [(row, loss) for row in data.finetune if (loss := _number(row.get("eval_loss"))) is not None]
    if not rows:
        return _no_data("Fine-tuning history")
    figure = Figure(figsize=(9, 3), layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    axes.plot(positions, [loss for _, loss in rows], color=MAIN, marker="o", label="held-out loss")
    base = [(i, loss) for i, (row, _) in enumerate(rows) if (loss := _number(row.get("loss_before"))) is not None]
    if base:
        axes.plot(*zip(*base, strict=True), color="#adb5bd", marker=".", linestyle=":", label="base model, held-out")
    axes.set_xticks(positions, [_label(row.get("id"), 16) for row, _ in rows])
    axes.legend(fontsize=8, frameon=False)
    _style(axes, title, xlabel="model version", ylabel="loss")
    return _png(figure)


def figures(data: ReportData) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, by name; an empty series gives a small "no data yet" figure."""
    return {
        "value_scores": _scores_figure(data),
        "skills_per_day": _per_day_figure(data.skills_per_day, "Skills learned per day", "skills"),
        "gate_outcomes": _outcomes_figure(data),
        "usefulness": _usefulness_figure(data),
        "dataset_growth": _per_day_figure(data.dataset_per_day, "Fine-tuning dataset size", "examples", line=True),
        "extraction_latency": _latency_figure(data),
        "drift": _drift_figure(data),
        "finetune": _finetune_figure(data),
    }


# ---------------------------------------------------------------------------------------------- HTML

CAPTIONS = {
    "value_scores": "How valuable each interaction was judged, and the five components the score is made of.",
    "skills_per_day": "New skills stored each day.",
    "gate_outcomes": "What happened to each extraction: stored, no skill found, rejected by the gate, or parked.",
    "usefulness": "Served skills: the share of serves that helped, with its interval; red ones are "
    "confidently unhelpful.",
    "dataset_growth": "Examples in the fine-tuning dataset, cumulative.",
    "extraction_latency": "Seconds each extraction took.",
    "drift": "How far each indicator moved from its baseline; above 0.1 watch it, above 0.2 act.",
    "finetune": "Loss on held-out examples for each fine-tuned model version; lower is better.",
}

STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;background:#fff;margin:0}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #dee2e6}
.meta{color:#6c757d;margin:0 0 16px}
.verdict{background:#f1f3f5;border-left:4px solid #1f77b4;padding:12px 16px 12px 34px;margin:0}
.verdict li{margin:4px 0}
.numbers{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px;margin:0}
.numbers div{border:1px solid #dee2e6;border-radius:6px;padding:8px 10px}
.numbers dt{color:#6c757d;font-size:13px}.numbers dd{margin:0;font-size:22px;font-weight:600}
figure{margin:16px 0}figure img{max-width:100%;height:auto;display:block}
figcaption{color:#6c757d;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #dee2e6}
th{background:#f8f9fa}code{background:#e9ecef;padding:0 4px;border-radius:3px}.empty{color:#6c757d}
"""


def _text(value: Any) -> str:
    """A table cell's text: numbers rounded for a reader, lists joined, everything escaped."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "; ".join(_text(item) for item in value)
    if isinstance(value, dict):
        return html.escape(str(value.get("name", value)))
    if value is None:
        return "–"
    return html.escape(str(value))


def _sentence(text: str) -> str:
    """A verdict sentence, escaped, with `command` spans shown as code (escaping leaves no backtick markup)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header, so the browser lays the page out before decoding."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def _figure_html(name: str, png: bytes) -> str:
    caption = CAPTIONS.get(name, name)
    width, height = _size(png)
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="{source}" alt="{html.escape(caption)}" width="{width}" height="{height}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    if not rows:
        return '<p class="empty">None.</p>'
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
    body = "".join("<tr>" + "".join(f"<td>{_text(row.get(key))}</td>" for key, _ in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _numbers(headline: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _text(value)

    cells = "".join(
        f"<div><dt>{html.escape(str(key).replace('_', ' '))}</dt><dd>{shown(value)}</dd></div>"
        for key, value in headline.items()
    )
    return f'<dl class="numbers">{cells}</dl>'


TABLES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "failures",
        "Failure clusters",
        [("size", "Size"), ("representative", "Representative"), ("shared", "Shared"), ("questions", "Questions")],
    ),
    (
        "gaps",
        "Gaps: asked, but no skill answers",
        [
            ("topic", "Topic"),
            ("asked", "Asked"),
            ("last_asked", "Last asked"),
            ("nearest_skill", "Nearest skill"),
            ("only_retired", "Only retired"),
            ("score", "Score"),
        ],
    ),
    (
        "experiments",
        "Experiments",
        [("name", "Name"), ("arms", "Arms"), ("status", "Status"), ("decision", "Decision")],
    ),
    (
        "drift",
        "Drift",
        [
            ("name", "Indicator"),
            ("psi", "PSI"),
            ("ks", "KS"),
            ("p_value", "p"),
            ("drifted", "Drifted"),
            ("reason", "Reason"),
        ],
    ),
]


def render(data: ReportData) -> str:
    """The whole report as one HTML page with everything embedded; every user string escaped."""
    when = data.generated_at.strftime("%Y-%m-%d %H:%M")
    sentences = "".join(f"<li>{_sentence(sentence)}</li>" for sentence in verdict(data))
    images = "".join(_figure_html(name, png) for name, png in figures(data).items())
    tables = "".join(
        f"<h2>{html.escape(title)}</h2>{_table(getattr(data, attribute), columns)}"
        for attribute, title, columns in TABLES
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>skilld report {html.escape(when)}</title><style>{STYLE}</style></head><body><main>"
        "<h1>Is skilld learning?</h1>"
        f'<p class="meta">The last {_plural(data.since_days, "day")}, generated {html.escape(when)}.</p>'
        f'<ul class="verdict">{sentences}</ul>'
        f"<h2>Headline</h2>{_numbers(data.headline)}"
        f"<h2>Figures</h2>{images}{tables}</main></body></html>\n"
    )


def write(data: ReportData, directory: Path) -> Path:
    """Write `report.html` into a directory, readable by its owner only, replaced whole (never half written)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    partial = directory / ".report.html.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older partial file may have kept wider permissions
        handle.write(render(data))
    os.replace(partial, path)
    return path
