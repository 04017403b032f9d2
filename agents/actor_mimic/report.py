"""The CC paper's Table 3 and Figure 2 from the result directories of experts and students.

Every run directory (DQN expert or actor-mimic student) holds ``eval_epochs.csv`` with
columns ``game,epoch,frames,mean_score,std_score,num_episodes``; students also hold
``train_epochs.csv`` with the share of guidance vectors on which the CC paper's closed-form
normalizer (eq. 4) fails and the count of non-finite loss/gradient steps.

* Table 3: per model (DQN, AMN, CC-AMN, CC-AMN with the published normalizer) and game,
  the mean and standard deviation of the evaluation score over the last ``last_epochs``
  evaluation epochs (the paper's form, one run); with several runs (seeds) of a model and
  game, the mean over seeds of that mean, and the sample standard deviation over seeds.
* Figure 2: per game, evaluation score against epoch (the mean over seeds): raw scores
  faded, a trailing moving average solid.
* Numerical health of the students: the closed-form failure shares, the share of rows on
  which the published CC-AMN falls back to the cross-entropy, where the guidance vectors
  sit (distance from the simplex's centroid relative to a vertex's) and the non-finite
  step count, which with keras_cc's exact normalizer stays 0 (no gradient is zeroed out).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np

from keras_cc_runs import run_directory

PUBLISHED = "CC-AMN (published)"
MODELS = ("DQN", "AMN", "CC-AMN", PUBLISHED)
PAPER_GAME_ORDER = ("Breakout", "Atlantis", "Pong", "SpaceInvaders")
COLORS = {"DQN": "#4d4d4d", "AMN": "#1f77b4", "CC-AMN": "#d62728", PUBLISHED: "#ff7f0e"}
# Health columns of train_epochs.csv averaged over epochs (weighted by states scored);
# records written before a column existed read NaN there.
HEALTH_SHARES = (
    "guidance_closed_form_failure_share",
    "student_closed_form_failure_share",
    "student_published_fallback_share",
    "guidance_centroid_distance",
)


@dataclasses.dataclass
class Curve:
    """Evaluation scores of one model on one game, by epoch."""

    model: str
    game: str
    run_dir: str
    epochs: np.ndarray
    frames: np.ndarray
    scores: np.ndarray
    seed: int | None = None


def run_directories(path: str) -> list[str]:
    """``path`` if it holds ``eval_epochs.csv``, else the directories below it that do
    (e.g. ``<grid>/seed<k>/<game>``), in sorted order."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"result directory {path!r} does not exist.")
    if os.path.isfile(os.path.join(path, "eval_epochs.csv")):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        if "eval_epochs.csv" in files:
            found.append(root)
            dirs.clear()  # a run's own sub-directories (export, checkpoints) hold no runs
    if not found:
        raise FileNotFoundError(
            f"no eval_epochs.csv in {path!r} nor in its sub-directories (is it a run directory?)."
        )
    return found


def load_curves(model: str, paths: Sequence[str]) -> dict[str, list[Curve]]:
    """``{game: [Curve of each run]}`` of ``model`` from run directories (or directories
    above them); several runs of one game are its seeds.

    Raises:
      ValueError: if two runs of ``model`` hold scores of the same game and seed (the
        ``seed`` of their ``config.json``; None without one).
    """
    curves: dict[str, list[Curve]] = {}
    for path in paths:
        for run_dir in run_directories(path):
            rows = run_directory.read_csv(os.path.join(run_dir, "eval_epochs.csv"))
            seed = _run_seed(run_dir)
            for game in dict.fromkeys(row["game"] for row in rows):
                same = [c for c in curves.get(game, []) if c.seed == seed]
                if same:
                    raise ValueError(
                        f"{model}: game {game} appears in two runs of seed {seed} "
                        f"({same[0].run_dir} and {run_dir}); give one run per game, model "
                        "and seed."
                    )
                game_rows = sorted(
                    (r for r in rows if r["game"] == game), key=lambda r: int(r["epoch"])
                )
                curves.setdefault(game, []).append(
                    Curve(
                        model=model,
                        game=game,
                        run_dir=run_dir,
                        epochs=np.array([int(r["epoch"]) for r in game_rows]),
                        frames=np.array([int(r["frames"]) for r in game_rows]),
                        scores=np.array([float(r["mean_score"]) for r in game_rows]),
                        seed=seed,
                    )
                )
    return curves


def mean_curve(runs: Sequence[Curve]) -> Curve:
    """The mean score over ``runs`` (seeds) at each epoch that every run reached."""
    if len(runs) == 1:
        return runs[0]
    epochs = sorted(set.intersection(*(set(run.epochs.tolist()) for run in runs)))
    pick = lambda run, values: np.array([values[run.epochs.tolist().index(e)] for e in epochs])
    return Curve(
        model=runs[0].model,
        game=runs[0].game,
        run_dir=", ".join(run.run_dir for run in runs),
        epochs=np.array(epochs, int),
        frames=np.mean([pick(run, run.frames) for run in runs], axis=0),
        scores=np.mean([pick(run, run.scores) for run in runs], axis=0),
    )


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


def _games(curves: dict[str, dict[str, list[Curve]]], games: Sequence[str] | None) -> list[str]:
    """``games``, or every game of ``curves`` in the paper's order."""
    return list(games or order_games({g for by_game in curves.values() for g in by_game}))


def _table_start(caption: str, labels: Sequence[str], columns: Sequence[str]) -> list[str]:
    """A caption and a table's header: ``labels`` left-aligned, ``columns`` (numbers)
    right-aligned."""
    return [
        caption,
        "",
        "| " + " | ".join([*labels, *columns]) + " |",
        "|" + "---|" * len(labels) + "---:|" * len(columns),
    ]


def seeds_summary(runs: Sequence[Curve], last_epochs: int) -> dict:
    """A Table 3 cell: for one run, the mean and standard deviation of its last
    ``last_epochs`` scores (the paper's form); for several runs (seeds), the mean over seeds
    of those means and their sample standard deviation. ``epochs`` is the fewest epochs
    any run averages."""
    summaries = [last_epochs_summary(run, last_epochs) for run in runs]
    epochs = min(count for _, _, count in summaries)
    if len(runs) == 1:
        mean, std, _ = summaries[0]
        return {"mean": mean, "std": std, "epochs": epochs, "seeds": 1}
    means = np.array([mean for mean, _, _ in summaries])
    return {
        "mean": float(np.mean(means)),
        "std": float(np.std(means, ddof=1)),
        "epochs": epochs,
        "seeds": len(runs),
    }


def table3_markdown(
    curves: dict[str, dict[str, list[Curve]]],
    last_epochs: int = 20,
    games: Sequence[str] | None = None,
) -> tuple[str, dict]:
    """Table 3 as markdown, and its numbers.

    ``curves`` is ``{model: {game: [Curve of each seed]}}``. A cell averaged over seeds
    says how many; a cell with fewer than ``last_epochs`` epochs says how many it
    averages; a missing run reads "–".
    """
    games = _games(curves, games)
    lines = _table_start(
        f"Mean evaluation score over the last {last_epochs} evaluation epochs (higher is "
        f"better), ± the standard deviation of those epochs' scores for one run, or, for "
        f"[n seeds], the mean over seeds ± the sample standard deviation over seeds.",
        ["Model"],
        games,
    )
    numbers: dict[str, dict[str, dict]] = {}
    short = False
    for model in MODELS:
        if model not in curves:
            continue
        cells = []
        for game in games:
            runs = curves[model].get(game)
            if not runs:
                cells.append("–")
                continue
            entry = seeds_summary(runs, last_epochs)
            numbers.setdefault(model, {})[game] = entry
            cell = _format_score(entry["mean"], entry["std"])
            if entry["seeds"] > 1:
                cell += f" [{entry['seeds']} seeds]"
            if entry["epochs"] < last_epochs:
                cell += f" [{entry['epochs']} ep.]"
                short = True
            cells.append(cell)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    if short:
        lines += ["", f"[n ep.]: the run has only n < {last_epochs} evaluation epochs."]
    return "\n".join(lines) + "\n", numbers


def by_seed_markdown(
    curves: dict[str, dict[str, list[Curve]]],
    last_epochs: int = 20,
    games: Sequence[str] | None = None,
) -> tuple[str, dict]:
    """Table 3 seed by seed, as markdown, and its numbers.

    A row per game and seed: each model's mean (± std) over its last ``last_epochs``
    evaluation epochs, for the run of that seed. Students distilled from different experts
    (one expert per seed) are compared within a row. Runs without a seed are left out.
    """
    games = _games(curves, games)
    models = [model for model in MODELS if model in curves]
    runs = {
        (model, game, run.seed): run
        for model in models
        for game in games
        for run in curves[model].get(game, [])
        if run.seed is not None
    }
    lines = _table_start(
        f"Mean evaluation score over the last {last_epochs} evaluation epochs of each "
        f"seed's run (± the standard deviation of those epochs' scores); \"–\": no finished "
        f"run of that seed.",
        ["Game", "Seed"],
        models,
    )
    numbers: dict[str, dict[str, dict]] = {}
    for game in games:
        for seed in sorted({seed for (_, g, seed) in runs if g == game}):
            cells = []
            for model in models:
                run = runs.get((model, game, seed))
                if run is None:
                    cells.append("–")
                    continue
                mean, std, count = last_epochs_summary(run, last_epochs)
                numbers.setdefault(game, {}).setdefault(str(seed), {})[model] = {
                    "mean": mean,
                    "std": std,
                    "epochs": count,
                }
                cells.append(_format_score(mean, std))
            lines.append(f"| {game} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", numbers


def _format_share(value: float, pattern: str) -> str:
    """``value`` by ``pattern``; "–" for NaN (a column the records do not hold)."""
    return "–" if math.isnan(value) else pattern.format(value)


def _run_seed(run_dir: str) -> int | None:
    """The ``seed`` of a run's ``config.json``, or None without one."""
    path = os.path.join(run_dir, "config.json")
    return run_directory.read_json(path).get("seed") if os.path.isfile(path) else None


def health_markdown(
    student_dirs: dict[str, Sequence[str]], games: Sequence[str] | None = None
) -> tuple[str, dict]:
    """Per student model and game, over all its runs (seeds): closed-form failure shares,
    the published fallback share, the guidance vectors' distance from the centroid, and
    non-finite steps.

    ``student_dirs`` is ``{model: [run or parent directories]}``; ``games``, the games to
    report, in the paper's order (default: every game found).
    """
    lines = [
        "Numerical health of the students, over the training epochs of all seeds, each "
        "epoch weighted by its updates: share of "
        "guidance vectors (and of the students' own distributions) on which the CC paper's "
        "closed-form normalizer (eq. 4) would fail; share of student rows on which the "
        "published CC-AMN falls back to the cross-entropy (its float32 closed-form mean is "
        "not positive); mean distance of the guidance vectors from the simplex's centroid "
        "(0) towards a vertex (1); updates whose loss or gradient was non-finite, summed "
        "over seeds (skipped, never applied).",
        "",
        "| Model | Game | Seeds | Epochs | Guidance: eq. 4 fails | Student: eq. 4 fails "
        "| Published fallback | Centroid distance | Non-finite steps |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    numbers: dict[str, dict[str, dict]] = {}
    for model, paths in student_dirs.items():
        rows_by_game: dict[str, list[list[dict]]] = {}
        for path in paths:
            for run_dir in run_directories(path):
                train_path = os.path.join(run_dir, "train_epochs.csv")
                if not os.path.isfile(train_path):
                    continue
                rows = run_directory.read_csv(train_path)
                for game in dict.fromkeys(r["game"] for r in rows):
                    runs = rows_by_game.setdefault(game, [])
                    runs.append([r for r in rows if r["game"] == game])
        for game in order_games(g for g in rows_by_game if not games or g in games):
            runs = rows_by_game[game]
            game_rows = [row for run in runs for row in run]
            states = np.array([int(r["states"]) for r in game_rows], float)
            weights = states / states.sum() if states.sum() > 0 else None

            def weighted(column, game_rows=game_rows, weights=weights):
                values = np.array([float(r.get(column, "nan") or "nan") for r in game_rows])
                if weights is None or np.all(np.isnan(values)):
                    return math.nan
                return float(np.nansum(values * weights) / np.sum(weights[~np.isnan(values)]))

            nonfinite = sum(max(int(r["nonfinite_steps"]) for r in run) for run in runs)
            entry = {
                "seeds": len(runs),
                "epochs": len(game_rows),
                **{column: weighted(column) for column in HEALTH_SHARES},
                "nonfinite_steps": nonfinite,
            }
            numbers.setdefault(model, {})[game] = entry
            shares = [entry[column] for column in HEALTH_SHARES]
            cells = [_format_share(x, "{:.1%}") for x in shares[:3]]
            cells.append(_format_share(shares[3], "{:.3f}"))
            lines.append(
                f"| {model} | {game} | {entry['seeds']} | {entry['epochs']} | "
                + " | ".join(cells)
                + f" | {nonfinite} |"
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
    curves: dict[str, dict[str, list[Curve]]],
    path: str,
    window: int = 5,
    games: Sequence[str] | None = None,
) -> None:
    """Figure 2: per game, raw evaluation scores (faded; the mean over seeds) and their
    moving average (solid)."""
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
            runs = curves.get(model, {}).get(game)
            curve = mean_curve(runs) if runs else None
            if curve is None or curve.scores.size == 0:
                continue
            color = COLORS[model]
            axis.plot(curve.epochs, curve.scores, color=color, alpha=0.3, linewidth=1)
            axis.plot(
                curve.epochs,
                moving_average(curve.scores, window),
                color=color,
                linewidth=2,
                label=model if len(runs) == 1 else f"{model} ({len(runs)} seeds)",
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
    published_dirs: Sequence[str] = (),
) -> str:
    """Writes table3.md (Table 3, the students' health, Table 3 seed by seed), figure2.png
    and report.json.

    Returns the markdown. ``experts_dir`` may be empty (no DQN row); ``published_dirs``
    holds the runs of CC-AMN with the published normalizer (``--loss cc_published``).
    """
    if last_epochs < 1 or window < 1:
        raise ValueError("last_epochs and window must be >= 1.")
    sources = {
        "DQN": [experts_dir] if experts_dir else [],
        "AMN": amn_dirs,
        "CC-AMN": cc_amn_dirs,
        PUBLISHED: list(published_dirs),
    }
    if not any(sources.values()):
        raise ValueError(
            "give at least one of --experts_dir, --amn_dirs, --cc_amn_dirs, --published_dirs."
        )
    curves = {model: load_curves(model, paths) for model, paths in sources.items() if paths}
    found = {g for by_game in curves.values() for g in by_game}
    if games:
        unknown = [g for g in games if g not in found]
        if unknown:
            raise ValueError(f"--games {unknown} have no scores (found: {sorted(found)}).")
    table, table_numbers = table3_markdown(curves, last_epochs, games or None)
    by_seed, by_seed_numbers = by_seed_markdown(curves, last_epochs, games or None)
    health, health_numbers = health_markdown(
        {model: paths for model, paths in sources.items() if model != "DQN" and paths}, games
    )
    os.makedirs(output_dir, exist_ok=True)
    markdown = (
        f"## Table 3\n\n{table}\n## Numerical health of the students\n\n{health}"
        f"\n## Seed by seed\n\n{by_seed}"
    )
    run_directory.write_text(os.path.join(output_dir, "table3.md"), markdown)
    plot_figure2(curves, os.path.join(output_dir, "figure2.png"), window, games or None)
    record = {
        "last_epochs": last_epochs,
        "table3": table_numbers,
        "health": health_numbers,
        "by_seed": by_seed_numbers,
        "runs": {
            model: {game: [run.run_dir for run in runs] for game, runs in by_game.items()}
            for model, by_game in curves.items()
        },
    }
    run_directory.write_json(os.path.join(output_dir, "report.json"), record)
    return markdown
