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
    assert "| CC-AMN | Breakout | 2 | 85.0% | 42.5% | 0 |" in markdown
    png = (tmp_path / "out" / "figure2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_last_epochs_window_and_moving_average(results):
    _, experts, _, _ = results
    curves = report.load_curves("DQN", [experts])
    assert report.last_epochs_summary(curves["Pong"], 5) == (
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
    with pytest.raises(ValueError, match="game Breakout appears in two runs"):
        report.build_report("", [amn, str(tmp_path / "cc")], [], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="at least one"):
        report.build_report("", [], [], str(tmp_path / "o"))
    with pytest.raises(ValueError, match="have no scores"):
        report.build_report(experts, [], [], str(tmp_path / "o"), games=["Atlantis"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no eval_epochs.csv"):
        report.build_report(str(tmp_path / "empty"), [], [], str(tmp_path / "o"))
