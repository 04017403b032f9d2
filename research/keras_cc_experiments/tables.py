"""Tables 1 and 2 of the CC paper from results records, as text and markdown.

Table 1: one row per regularizer combination (dropout, weight decay, batch norm), one
column per loss (w/o LS, with LS, CC-LS, CC-LS published), each entry a test accuracy
in percent (:data:`METRICS`: final, maximum over epochs, or at the validation-selected
epoch), mean (± standard deviation over seeds, sample or population), the best mean of
each row marked. :func:`table_caption` says which number and which deviation.
Table 2: within-cluster over between-cluster sum of squares of the learned
representations, in percent, mean (± standard error over seeds), training and test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from keras_cc_experiments import model as model_lib
from keras_cc_experiments.cells import STATUS_DONE

__all__ = [
    "EntryStats",
    "best_losses",
    "format_table1",
    "format_table2",
    "summarize_grid",
]

METRICS = {
    "final_test_accuracy": "test accuracy after the last epoch",
    "max_test_accuracy": "maximum test accuracy over epochs (the CC paper's number)",
    "selected_test_accuracy": "test accuracy at the epoch of best validation accuracy",
}
# Records of version 2 named the maximum "best_test_accuracy".
_METRIC_ALIASES = {"max_test_accuracy": ("best_test_accuracy",)}


@dataclasses.dataclass(frozen=True)
class EntryStats:
    """The seeds of one (row, loss) entry: values of the finished ones, failures, gaps."""

    values: tuple[float, ...]
    failed: int
    missing: int
    reasons: tuple[str, ...] = ()
    ddof: int = 1

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Standard deviation over seeds: sample (``ddof=1``) or population (``ddof=0``,
        the CC paper's); NaN for fewer than 2 values."""
        return float(np.std(self.values, ddof=self.ddof)) if len(self.values) > 1 else math.nan

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(len(self.values)) if len(self.values) > 1 else math.nan

    def as_dict(self) -> dict:
        return {
            "values": list(self.values),
            "mean": self.mean,
            "std": self.std,
            "ddof": self.ddof,
            "n": len(self.values),
            "failed": self.failed,
            "missing": self.missing,
            "reasons": list(self.reasons),
        }


def summarize_grid(
    records: Mapping[str, dict],
    rows: Sequence[model_lib.Regularizers],
    losses: Sequence[str],
    seeds: Sequence[int],
    metric: str = "final_test_accuracy",
    ddof: int = 1,
) -> dict[tuple[str, str], EntryStats]:
    """Entry statistics keyed by ``(row.key, loss)``; accuracies in percent.

    A finished record without ``metric`` (no validation split for
    ``selected_test_accuracy``) counts as missing.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {sorted(METRICS)}.")
    summary = {}
    for row in rows:
        for loss in losses:
            values, failed, missing, reasons = [], 0, 0, []
            for seed in seeds:
                record = records.get(f"{row.key}__{loss}__seed{seed}")
                if record is None:
                    missing += 1
                elif record.get("status") == STATUS_DONE:
                    value = _metric_value(record, metric)
                    if value is None:
                        missing += 1
                    else:
                        values.append(100.0 * float(value))
                else:
                    failed += 1
                    reasons.append(str(record.get("reason")))
            summary[(row.key, loss)] = EntryStats(
                tuple(values), failed, missing, tuple(reasons), ddof
            )
    return summary


def _metric_value(record: dict, metric: str):
    for name in (metric, *_METRIC_ALIASES.get(metric, ())):
        if record.get(name) is not None:
            return record[name]
    return None


def table_caption(
    metric: str, ddof: int, seeds: Sequence[int], dataset: str, protocol: str, epochs: int
) -> str:
    """What a Table 1 shows: the number, the deviation, the seeds and the setup."""
    deviation = "population std" if ddof == 0 else "sample std"
    return (
        f"{METRICS[metric]} (%), mean (± {deviation}) over seeds {list(seeds)}; "
        f"{dataset}, --protocol={protocol}, {epochs} epochs"
    )


def best_losses(entries: Mapping[str, EntryStats], decimals: int = 1) -> set[str]:
    """Losses whose mean, rounded as displayed, is the row's highest (ties all count).

    Empty when fewer than two entries of the row have values (nothing to compare).
    """
    means = {loss: round(e.mean, decimals) for loss, e in entries.items() if e.values}
    if len(means) < 2:
        return set()
    top = max(means.values())
    return {loss for loss, mean in means.items() if mean == top}


def _entry_text(entry: EntryStats, decimals: int) -> str:
    if not entry.values:
        if entry.failed:
            return f"failed ({entry.failed})"
        return "–"
    text = f"{entry.mean:.{decimals}f}"
    if len(entry.values) > 1:
        text += f" (±{entry.std:.{decimals}f})"
    notes = []
    if entry.failed:
        notes.append(f"{entry.failed} failed")
    if entry.missing:
        notes.append(f"{entry.missing} pending")
    if notes:
        text += f" [{', '.join(notes)}]"
    return text


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def format_table1(
    summary: Mapping[tuple[str, str], EntryStats],
    rows: Sequence[model_lib.Regularizers],
    losses: Sequence[str],
    decimals: int = 1,
    markdown: bool = False,
) -> str:
    """Table 1: rows of regularizers, a column per loss, best of each row marked.

    Markdown marks the best in **bold**; text marks it with ``*`` and aligns columns.
    """
    header = ["Dropout", "Weight decay", "BatchNorm"] + [model_lib.LOSS_LABELS[x] for x in losses]
    body = []
    for row in rows:
        entries = {loss: summary[(row.key, loss)] for loss in losses}
        best = best_losses(entries, decimals)
        cells = [_yes_no(row.dropout), _yes_no(row.weight_decay), _yes_no(row.batch_norm)]
        for loss in losses:
            text = _entry_text(entries[loss], decimals)
            if loss in best:
                text = f"**{text}**" if markdown else f"{text} *"
            cells.append(text)
        body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_table2(
    ratios: Mapping[str, Mapping[str, Sequence[float]]],
    losses: Sequence[str],
    decimals: int = 1,
) -> str:
    """Table 2 as markdown: ``ratios[split][loss]`` holds one W/B ratio per seed.

    Entries are percentages, mean (± standard error over seeds).
    """
    header = ["Samples"] + [model_lib.LOSS_LABELS[x] for x in losses]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for split, label in (("train", "Training"), ("test", "Test")):
        if split not in ratios:
            continue
        cells = [label]
        for loss in losses:
            entry = EntryStats(tuple(100.0 * float(v) for v in ratios[split][loss]), 0, 0)
            text = f"{entry.mean:.{decimals}f}%"
            if len(entry.values) > 1:
                text += f" (±{entry.standard_error:.{decimals}f})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
