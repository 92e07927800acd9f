"""Self-contained HTML: the comparison table, loss curves and risk confusion matrices as inline images."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from orchestrator import inputs, outputs
from orchestrator.task import Task


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def loss_curve(run_dir: Path, title: str) -> str | None:
    """Train (and eval) loss over steps from the trainer's history, as a data URI."""
    train, evals = outputs.loss_points(run_dir), outputs.loss_points(run_dir, "eval_loss")
    if not train:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title(title)
    return _png(fig)


def confusion_image(metrics_path: Path, field: str) -> str | None:
    """The risk field's confusion matrix (gold rows, predicted columns) as a data URI."""
    if not metrics_path.is_file():
        return None
    metrics = inputs.read_json(metrics_path)
    confusion = ((metrics.get("fields") or {}).get(field) or {}).get("confusion")
    if not confusion:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gold = list(confusion)
    pred = list(next(iter(confusion.values())))
    grid = [[confusion[g][p] for p in pred] for g in gold]
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(pred)), pred, rotation=45, ha="right")
    ax.set_yticks(range(len(gold)), gold)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(metrics.get("decoding", ""))
    return _png(fig)


def threshold_image(metrics_path: Path) -> str | None:
    """Any-risk recall, precision and flagged share against the P(risk) threshold, the chosen one marked.

    Only for evaluations that were given an operating point (a threshold chosen on val, or the reason
    there is none).
    """
    if not metrics_path.is_file():
        return None
    metrics = inputs.read_json(metrics_path)
    risk = metrics.get("risk") or {}
    curve = risk.get("curve")
    if not curve or "operating_point" not in risk:  # reference rows (the untrained base) keep a curve, unplotted
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    thresholds = [p["threshold"] for p in curve]
    for key, label in (("recall", "any-risk recall"), ("precision", "precision"), ("flagged", "flagged share")):
        ax.step(thresholds, [p[key] if p[key] is not None else float("nan") for p in curve], where="post", label=label)
    chosen = (risk.get("operating_point") or {}).get("threshold")
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle="--", label="chosen on val")
    ax.set_xlabel("threshold on P(risk)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"{metrics.get('split')}: operating points")
    return _png(fig)


def steps_links(steps_md: Path, link: str) -> str:
    """An HTML list of the steps.md entries (newest first), each linking to the journal."""
    if not steps_md.is_file():
        return "<p>no steps.md entries yet</p>"
    heads = [line[3:].strip() for line in steps_md.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
    items = "".join(f'<li><a href="{html.escape(link)}">{html.escape(h)}</a></li>' for h in reversed(heads[-50:]))
    return f"<ul>{items}</ul>"


def comparison_html(rows: list[Any], threshold: float, task: Task, journal: str = "") -> str:
    """The whole report of a task as one HTML file (images inlined); `journal` is extra HTML about steps.md."""
    from orchestrator.collect import RISK_LOW

    columns = list(rows[0].values) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cls = ' class="flagged"' if row.values.get(RISK_LOW) else ""
        cells = "".join(f"<td>{html.escape(row.cell(c))}</td>" for c in columns)
        body.append(f"<tr{cls}>{cells}</tr>")
    figures = []
    seen: set[Path] = set()
    for row in rows:
        label = html.escape(f"{row.values.get('model')} / {row.values.get('method')} / {row.values.get('decoding')}")
        images = []
        if row.run_dir and row.run_dir not in seen:
            seen.add(row.run_dir)
            curve = loss_curve(row.run_dir, f"{row.values.get('model')}/{row.values.get('method')}")
            if curve:
                images.append(f'<img alt="loss curve" src="{curve}">')
        matrix = confusion_image(row.metrics_path, task.risk_field) if task.has_risk else None
        if matrix:
            images.append(f'<img alt="risk confusion matrix" src="{matrix}">')
        points = threshold_image(row.metrics_path) if task.has_risk else None
        if points:
            images.append(f'<img alt="risk operating points" src="{points}">')
        if images:
            figures.append(f"<figure><figcaption>{label}</figcaption>{''.join(images)}</figure>")
    risk_note = (
        f"<p>Rows shaded red: any-risk recall ({html.escape(str(task.risk_field))}) below {threshold:.2f}. "
        "Missing a risk flag is the worst error this product can make. Rates read value (k/n, 95% Wilson "
        "interval); <code>risk_threshold</code> is chosen on val for the target recall and applied to the "
        "row's split.</p>"
        if task.has_risk
        else "<p>This task has no risk field.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orch: model comparison</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; }}
th {{ background: #f0f0f0; }}
tr.flagged td {{ background: #fde2e2; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
</style></head><body>
<h1>Model comparison: task {html.escape(task.name)}</h1>
{risk_note}
<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Loss curves{" and risk confusion matrices" if task.has_risk else ""}</h2>
{"".join(figures) or "<p>none</p>"}
{"<h2>Journal (steps/steps.md)</h2>" + journal if journal else ""}
<script>
window.addEventListener("load", () => {{
  const loaded = [...document.images].filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = String(loaded);
}});
</script>
</body></html>
"""


def format_cell(value: Any) -> str:
    """A table cell: n/a for missing, 3 decimals for floats."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
