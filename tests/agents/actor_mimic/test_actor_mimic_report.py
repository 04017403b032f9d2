"""Table 3, the students' health table and Figure 2 from hand-built result files."""

import json
import math

import numpy as np
import pytest

from keras_cc_agents.actor_mimic import report
from keras_cc_agents.actor_mimic.trainer import TRAIN_EPOCH_COLUMNS
from keras_cc_agents.training import EVAL_EPOCH_COLUMNS
from keras_cc_runs.run_directory import write_csv


def _eval_rows(game, scores):
    return [
        dict(
            game=game,
            epoch=epoch,
            frames=epoch * 100_000,
            mean_score=score,
            std_score=0.0,
            num_episodes=3,
        )
        for epoch, score in enumerate(scores, start=1)
    ]


def _train_rows(game, shares, states, nonfinite=0):
    return [
        dict(
            game=game,
            epoch=epoch,
            frames=epoch * 100_000,
            updates=10,
            states=n,
            mean_loss=1.0,
            guidance_closed_form_failure_share=share,
            student_closed_form_failure_share=share / 2,
            student_published_fallback_share=share / 4,
            guidance_centroid_distance=1.0 - share,
            epoch_nonfinite_steps=0,
            nonfinite_steps=nonfinite,
        )
        for epoch, (share, n) in enumerate(zip(shares, states, strict=True), start=1)
    ]


@pytest.fixture
def results(tmp_path):
    experts = tmp_path / "dqn"
    # DQN: one run per game, 25 epochs; the last 20 are 6..25 (Pong) and 310..500 (Breakout).
    for game, scores in (("Pong", np.arange(1.0, 26.0)), ("Breakout", 10.0 * np.arange(1, 51))):
        (experts / f"{game}_seed0").mkdir(parents=True)
        write_csv(
            experts / f"{game}_seed0" / "eval_epochs.csv",
            EVAL_EPOCH_COLUMNS,
            _eval_rows(game, scores),
        )
    # AMN: one multi-task run with both games, 3 epochs.
    amn = tmp_path / "amn"
    amn.mkdir()
    write_csv(
        amn / "eval_epochs.csv",
        EVAL_EPOCH_COLUMNS,
        _eval_rows("Breakout", [1.0, 2.0, 6.0]) + _eval_rows("Pong", [-21.0, -20.0, -19.0]),
    )
    write_csv(
        amn / "train_epochs.csv",
        TRAIN_EPOCH_COLUMNS,
        _train_rows("Breakout", [0.5, 0.2, 0.2], [100, 100, 200])
        + _train_rows("Pong", [1.0, 1.0, 1.0], [100, 100, 100]),
    )
    # CC-AMN: a directory of single-game runs; Breakout only.
    cc = tmp_path / "cc"
    (cc / "Breakout").mkdir(parents=True)
    write_csv(
        cc / "Breakout" / "eval_epochs.csv", EVAL_EPOCH_COLUMNS, _eval_rows("Breakout", [4.0, 8.0])
    )
    write_csv(
        cc / "Breakout" / "train_epochs.csv",
        TRAIN_EPOCH_COLUMNS,
        _train_rows("Breakout", [0.9, 0.7], [300, 100]),
    )
    return tmp_path, str(experts), str(amn), str(cc)


def test_table3_numbers_and_markdown(results):
    tmp_path, experts, amn, cc = results
    markdown = report.build_report(experts, [amn], [cc], str(tmp_path / "out"), last_epochs=20)
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    pong = numbers["table3"]["DQN"]["Pong"]
    assert pong["epochs"] == 20
    assert math.isclose(pong["mean"], 15.5) and math.isclose(pong["std"], math.sqrt(399 / 12))
    breakout = numbers["table3"]["DQN"]["Breakout"]  # 310, 320, ..., 500
    assert math.isclose(breakout["mean"], 405.0) and math.isclose(
        breakout["std"], 10 * math.sqrt(399 / 12)
    )
    assert numbers["table3"]["AMN"]["Breakout"] == {
        "mean": 3.0,
        "std": np.std([1, 2, 6]),
        "epochs": 3,
        "seeds": 1,
    }
    assert "| Model | Breakout | Pong |" in markdown  # the paper's column order
    assert "| DQN | 405 (± 58) | 15.5 (± 5.8) |" in markdown
    assert "| AMN | 3.0 (± 2.2) [3 ep.] | -20.0 (± 0.8) [3 ep.] |" in markdown
    assert "| CC-AMN | 6.0 (± 2.0) [2 ep.] | – |" in markdown
    # Health: shares averaged over epochs weighted by the states each epoch scored.
    health = numbers["health"]
    assert math.isclose(health["AMN"]["Breakout"]["guidance_closed_form_failure_share"], 0.275)
    assert math.isclose(health["CC-AMN"]["Breakout"]["guidance_closed_form_failure_share"], 0.85)
    assert math.isclose(health["CC-AMN"]["Breakout"]["student_closed_form_failure_share"], 0.425)
    assert math.isclose(health["CC-AMN"]["Breakout"]["student_published_fallback_share"], 0.2125)
    assert math.isclose(health["CC-AMN"]["Breakout"]["guidance_centroid_distance"], 0.15)
    assert "| CC-AMN | Breakout | 1 | 2 | 85.0% | 42.5% | 21.3% | 0.150 | 0 |" in markdown
    png = (tmp_path / "out" / "figure2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_games_choose_every_table_s_games(results):
    """``games`` limits the health table too, not only Table 3 and the seed table."""
    tmp_path, experts, amn, cc = results
    markdown = report.build_report(
        experts, [amn], [cc], str(tmp_path / "out"), last_epochs=20, games=["Breakout"]
    )
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(numbers["health"]["AMN"]) == {"Breakout"}
    assert "Pong" not in markdown


def test_last_epochs_window_and_moving_average(results):
    _, experts, _, _ = results
    curves = report.load_curves("DQN", [experts])
    assert report.last_epochs_summary(curves["Pong"][0], 5) == (
        23.0,
        float(np.std([21, 22, 23, 24, 25])),
        5,
    )
    np.testing.assert_allclose(report.moving_average([1, 2, 3, 10], 2), [1, 1.5, 2.5, 6.5])
    np.testing.assert_allclose(report.moving_average([1, 2, 3], 1), [1, 2, 3])


def test_bad_input_is_named(results, tmp_path):
    _, experts, amn, _ = results
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report.build_report(str(tmp_path / "nowhere"), [], [], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="game Breakout appears in two runs of seed None"):
        report.build_report("", [amn, str(tmp_path / "cc")], [], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="at least one"):
        report.build_report("", [], [], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="have no scores"):
        report.build_report(experts, [], [], str(tmp_path / "o"), games=["Atlantis"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no eval_epochs.csv"):
        report.build_report(str(tmp_path / "empty"), [], [], str(tmp_path / "o"))


def _seed_run(path, seed, game, scores, shares, nonfinite=0):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed, "games": [game]}))
    write_csv(path / "eval_epochs.csv", EVAL_EPOCH_COLUMNS, _eval_rows(game, scores))
    write_csv(
        path / "train_epochs.csv",
        TRAIN_EPOCH_COLUMNS,
        _train_rows(game, shares, [100] * len(shares), nonfinite),
    )


def test_seeds_are_averaged_in_table3_figure2_and_health(tmp_path):
    # Three seeds of one student (a grid's layout: seed<k>/<game>), epochs of unequal count.
    grid = tmp_path / "cc"
    _seed_run(grid / "seed0" / "Breakout", 0, "Breakout", [1.0, 3.0, 5.0], [0.1, 0.1, 0.1])
    _seed_run(grid / "seed1" / "Breakout", 1, "Breakout", [2.0, 4.0, 6.0], [0.3, 0.3, 0.3], 2)
    _seed_run(grid / "seed2" / "Breakout", 2, "Breakout", [0.0, 2.0], [0.2, 0.2], 1)
    markdown = report.build_report("", [], [str(grid)], str(tmp_path / "out"), last_epochs=2)
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    cell = numbers["table3"]["CC-AMN"]["Breakout"]
    # The seeds' means over their last 2 epochs: 4, 5 and 1; their mean and sample std.
    assert cell["seeds"] == 3 and cell["epochs"] == 2
    assert math.isclose(cell["mean"], 10.0 / 3.0)
    assert math.isclose(cell["std"], float(np.std([4.0, 5.0, 1.0], ddof=1)))
    assert "| CC-AMN | 3.3 (± 2.1) [3 seeds] |" in markdown
    # Seed by seed: each run's own last 2 epochs.
    assert "| Breakout | 1 | 5.0 (± 1.0) |" in markdown
    assert numbers["by_seed"]["Breakout"]["2"]["CC-AMN"] == {"mean": 1.0, "std": 1.0, "epochs": 2}
    health = numbers["health"]["CC-AMN"]["Breakout"]
    assert health["seeds"] == 3 and health["epochs"] == 8 and health["nonfinite_steps"] == 3
    assert math.isclose(health["guidance_closed_form_failure_share"], 1.6 / 8)
    # Figure 2 plots the seeds' mean at the epochs every seed reached.
    curves = report.load_curves("CC-AMN", [str(grid)])
    mean = report.mean_curve(curves["Breakout"])
    np.testing.assert_allclose(mean.epochs, [1, 2])
    np.testing.assert_allclose(mean.scores, [1.0, 3.0])
    # A second run of the same seed is refused, naming both.
    _seed_run(tmp_path / "again" / "Breakout", 1, "Breakout", [1.0], [0.1])
    with pytest.raises(ValueError, match="two runs of seed 1"):
        report.load_curves("CC-AMN", [str(grid), str(tmp_path / "again")])
