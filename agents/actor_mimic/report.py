"""The CC paper's Table 3 and Figure 2 from the result directories of experts and students.

Every run directory (DQN expert or actor-mimic student) holds ``eval_epochs.csv`` with
columns ``game,epoch,frames,mean_score,std_score,num_episodes``; students also hold
``train_epochs.csv`` with the share of guidance vectors on which the CC paper's closed-form
normalizer (eq. 4) fails and the count of non-finite loss/gradient steps.

* Table 3: per model (DQN, AMN, CC-AMN) and game, the mean and standard deviation of the
  evaluation score over the last ``last_epochs`` evaluation epochs.
* Figure 2: per game, evaluation score against epoch: raw scores faded, a trailing moving
  average solid.
* Numerical health of the students: the closed-form failure shares and the non-finite
  step count, which with keras_cc's exact normalizer stays 0 (no gradient is zeroed out).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np

from keras_cc_runs import run_directory

MODELS = ("DQN", "AMN", "CC-AMN")
PAPER_GAME_ORDER = ("Breakout", "Atlantis", "Pong", "SpaceInvaders")
COLORS = {"DQN": "#4d4d4d", "AMN": "#1f77b4", "CC-AMN": "#d62728"}


@dataclasses.dataclass
class Curve:
    """Evaluation scores of one model on one game, by epoch."""

    model: str
    game: str
    run_dir: str
    epochs: np.ndarray
    frames: np.ndarray
    scores: np.ndarray


def run_directories(path: str) -> list[str]:
    """``path`` if it holds ``eval_epochs.csv``, else its sub-directories that do."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"result directory {path!r} does not exist.")
    if os.path.isfile(os.path.join(path, "eval_epochs.csv")):
        return [path]
    found = [
        os.path.join(path, entry)
        for entry in sorted(os.listdir(path))
        if os.path.isfile(os.path.join(path, entry, "eval_epochs.csv"))
    ]
    if not found:
        raise FileNotFoundError(
            f"no eval_epochs.csv in {path!r} nor in its sub-directories (is it a run directory?)."
        )
    return found


def load_curves(model: str, paths: Sequence[str]) -> dict[str, Curve]:
    """``{game: Curve}`` of ``model`` from run directories (or parents of run directories).

    Raises:
      ValueError: if two runs of ``model`` hold scores of the same game.
    """
    curves: dict[str, Curve] = {}
    for path in paths:
        for run_dir in run_directories(path):
            rows = run_directory.read_csv(os.path.join(run_dir, "eval_epochs.csv"))
            for game in dict.fromkeys(row["game"] for row in rows):
                if game in curves:
                    raise ValueError(
                        f"{model}: game {game} appears in two runs ({curves[game].run_dir} and "
                        f"{run_dir}); give one run per game and model."
                    )
                game_rows = sorted(
                    (r for r in rows if r["game"] == game), key=lambda r: int(r["epoch"])
                )
                curves[game] = Curve(
                    model=model,
                    game=game,
                    run_dir=run_dir,
                    epochs=np.array([int(r["epoch"]) for r in game_rows]),
                    frames=np.array([int(r["frames"]) for r in game_rows]),
                    scores=np.array([float(r["mean_score"]) for r in game_rows]),
                )
    return curves


def order_games(games: Sequence[str]) -> list[str]:
    """The paper's games first, in its order, then the rest sorted."""
    games = set(games)
    return [g for g in PAPER_GAME_ORDER if g in games] + sorted(games - set(PAPER_GAME_ORDER))


def last_epochs_summary(curve: Curve, last_epochs: int) -> tuple[float, float, int]:
    """Mean and standard deviation of the last ``last_epochs`` epochs' scores, and the count."""
    window = curve.scores[-last_epochs:]
    if window.size == 0:
        return math.nan, math.nan, 0
    return float(np.mean(window)), float(np.std(window)), int(window.size)


def _format_score(mean: float, std: float) -> str:
    digits = 0 if max(abs(mean), abs(std)) >= 100 else 1
    return f"{mean:.{digits}f} (± {std:.{digits}f})"


def table3_markdown(
    curves: dict[str, dict[str, Curve]], last_epochs: int = 20, games: Sequence[str] | None = None
) -> tuple[str, dict]:
    """Table 3 as markdown, and its numbers.

    ``curves`` is ``{model: {game: Curve}}``. A cell with fewer than ``last_epochs``
    epochs says how many it averages; a missing run reads "–".
    """
    games = list(games or order_games({g for by_game in curves.values() for g in by_game}))
    lines = [
        f"Mean evaluation score (± standard deviation) over the last {last_epochs} evaluation "
        "epochs (higher is better).",
        "",
        "| Model | " + " | ".join(games) + " |",
        "|---|" + "---:|" * len(games),
    ]
    numbers: dict[str, dict[str, dict]] = {}
    short = False
    for model in MODELS:
        if model not in curves:
            continue
        cells = []
        for game in games:
            curve = curves[model].get(game)
            if curve is None:
                cells.append("–")
                continue
            mean, std, count = last_epochs_summary(curve, last_epochs)
            numbers.setdefault(model, {})[game] = {"mean": mean, "std": std, "epochs": count}
            cell = _format_score(mean, std)
            if count < last_epochs:
                cell += f" [{count} ep.]"
                short = True
            cells.append(cell)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if short:
        lines += ["", f"[n ep.]: the run has only n < {last_epochs} evaluation epochs."]
    return "\n".join(lines) + "\n", numbers


def health_markdown(student_dirs: dict[str, Sequence[str]]) -> tuple[str, dict]:
    """Per student model and game: closed-form failure shares and non-finite steps.

    ``student_dirs`` is ``{model: [run or parent directories]}``.
    """
    lines = [
        "Numerical health of the students: share of guidance vectors (and of the students' "
        "own distributions) on which the CC paper's closed-form normalizer (eq. 4) would "
        "fail, averaged over training epochs, and updates whose loss or gradient was "
        "non-finite (keras_cc's exact normalizer; no gradient is zeroed out).",
        "",
        "| Model | Game | Epochs | Guidance: eq. 4 fails | Student: eq. 4 fails "
        "| Non-finite steps |",
        "|---|---|---:|---:|---:|---:|",
    ]
    numbers: dict[str, dict[str, dict]] = {}
    for model, paths in student_dirs.items():
        for path in paths:
            for run_dir in run_directories(path):
                train_path = os.path.join(run_dir, "train_epochs.csv")
                if not os.path.isfile(train_path):
                    continue
                rows = run_directory.read_csv(train_path)
                for game in order_games({r["game"] for r in rows}):
                    game_rows = [r for r in rows if r["game"] == game]
                    states = np.array([int(r["states"]) for r in game_rows], float)
                    weights = states / states.sum() if states.sum() > 0 else None

                    def weighted(column, game_rows=game_rows, weights=weights):
                        values = np.array([float(r[column]) for r in game_rows])
                        if weights is None:
                            return math.nan
                        return float(np.nansum(values * weights))

                    nonfinite = max(int(r["nonfinite_steps"]) for r in game_rows)
                    entry = {
                        "epochs": len(game_rows),
                        "guidance_closed_form_failure_share": weighted(
                            "guidance_closed_form_failure_share"
                        ),
                        "student_closed_form_failure_share": weighted(
                            "student_closed_form_failure_share"
                        ),
                        "nonfinite_steps": nonfinite,
                    }
                    numbers.setdefault(model, {})[game] = entry
                    lines.append(
                        f"| {model} | {game} | {entry['epochs']} | "
                        f"{entry['guidance_closed_form_failure_share']:.1%} | "
                        f"{entry['student_closed_form_failure_share']:.1%} | {nonfinite} |"
                    )
    return "\n".join(lines) + "\n", numbers


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (shorter windows at the start)."""
    values = np.asarray(values, float)
    if window <= 1 or values.size == 0:
        return values.copy()
    sums = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(values.size):
        start = max(0, i + 1 - window)
        out[i] = (sums[i + 1] - sums[start]) / (i + 1 - start)
    return out


def plot_figure2(
    curves: dict[str, dict[str, Curve]],
    path: str,
    window: int = 5,
    games: Sequence[str] | None = None,
) -> None:
    """Figure 2: per game, raw evaluation scores (faded) and their moving average (solid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    games = list(games or order_games({g for by_game in curves.values() for g in by_game}))
    if not games:
        raise ValueError("no evaluation scores to plot.")
    fig, axes = plt.subplots(
        1, len(games), figsize=(max(4.2 * len(games), 6.4), 3.6), squeeze=False
    )
    for axis, game in zip(axes[0], games, strict=True):
        for model in MODELS:
            curve = curves.get(model, {}).get(game)
            if curve is None or curve.scores.size == 0:
                continue
            color = COLORS[model]
            axis.plot(curve.epochs, curve.scores, color=color, alpha=0.3, linewidth=1)
            axis.plot(
                curve.epochs,
                moving_average(curve.scores, window),
                color=color,
                linewidth=2,
                label=model,
            )
        axis.set_title(game)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("evaluation score")
    axes[0][-1].legend(loc="best", fontsize=8)
    break_line = "\n" if len(games) == 1 else " "  # one panel is too narrow for one line
    fig.suptitle(
        f"Evaluation score per epoch: raw (faded),{break_line}moving average over {window} (solid)",
        fontsize=10,
    )
    fig.tight_layout()
    try:
        run_directory.write_figure(fig, path, dpi=120)
    finally:
        plt.close(fig)


def build_report(
    experts_dir: str,
    amn_dirs: Sequence[str],
    cc_amn_dirs: Sequence[str],
    output_dir: str,
    last_epochs: int = 20,
    window: int = 5,
    games: Sequence[str] | None = None,
) -> str:
    """Writes table3.md (Table 3 and the students' health), figure2.png and report.json.

    Returns the markdown. ``experts_dir`` may be empty (no DQN row).
    """
    if last_epochs < 1 or window < 1:
        raise ValueError("last_epochs and window must be >= 1.")
    sources = {"DQN": [experts_dir] if experts_dir else [], "AMN": amn_dirs, "CC-AMN": cc_amn_dirs}
    if not any(sources.values()):
        raise ValueError("give at least one of --experts_dir, --amn_dirs, --cc_amn_dirs.")
    curves = {model: load_curves(model, paths) for model, paths in sources.items() if paths}
    found = {g for by_game in curves.values() for g in by_game}
    if games:
        unknown = [g for g in games if g not in found]
        if unknown:
            raise ValueError(f"--games {unknown} have no scores (found: {sorted(found)}).")
    table, table_numbers = table3_markdown(curves, last_epochs, games or None)
    health, health_numbers = health_markdown(
        {model: paths for model, paths in sources.items() if model != "DQN" and paths}
    )
    os.makedirs(output_dir, exist_ok=True)
    markdown = f"## Table 3\n\n{table}\n## Numerical health of the students\n\n{health}"
    run_directory.write_text(os.path.join(output_dir, "table3.md"), markdown)
    plot_figure2(curves, os.path.join(output_dir, "figure2.png"), window, games or None)
    record = {
        "last_epochs": last_epochs,
        "table3": table_numbers,
        "health": health_numbers,
        "runs": {m: {g: c.run_dir for g, c in by_game.items()} for m, by_game in curves.items()},
    }
    run_directory.write_json(os.path.join(output_dir, "report.json"), record)
    return markdown
