"""The action union and its per-game masks and gathers, against a hand-built case."""

import numpy as np
import pytest

from keras_cc_agents.actor_mimic.action_union import ActionUnion, union_of_meanings

BREAKOUT = ["NOOP", "FIRE", "RIGHT", "LEFT"]
ATLANTIS = ["NOOP", "FIRE", "RIGHTFIRE", "LEFTFIRE"]
PONG = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]


@pytest.fixture
def union():
    return ActionUnion.from_action_meanings(
        {"Breakout": BREAKOUT, "Atlantis": ATLANTIS, "Pong": PONG}
    )


def test_union_order_follows_the_ale_action_set(union):
    # ALE order: NOOP 0, FIRE 1, RIGHT 3, LEFT 4, RIGHTFIRE 11, LEFTFIRE 12.
    assert union.meanings == ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE")
    assert union.games == ("Breakout", "Atlantis", "Pong")
    assert union.num_actions == 6 and union.num_games == 3
    # The union does not depend on the order in which games are listed.
    other = ActionUnion.from_action_meanings({"Atlantis": ATLANTIS, "Breakout": BREAKOUT})
    assert other.meanings == ("NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE")


def test_gathers_and_masks_hand_built(union):
    np.testing.assert_array_equal(union.game_to_union[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(union.game_to_union[1], [0, 1, 4, 5])
    np.testing.assert_array_equal(union.game_to_union[2], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(
        union.legal_masks,
        [
            [True, True, True, True, False, False],
            [True, True, False, False, True, True],
            [True, True, True, True, True, True],
        ],
    )
    np.testing.assert_array_equal(
        union.union_to_game,
        [[0, 1, 2, 3, -1, -1], [0, 1, -1, -1, 2, 3], [0, 1, 2, 3, 4, 5]],
    )


def test_round_trips_and_gathering_student_outputs(union):
    # Atlantis' action 2 is RIGHTFIRE: union slot 4.
    np.testing.assert_array_equal(union.to_union_actions("Atlantis", [0, 2, 3]), [0, 4, 5])
    np.testing.assert_array_equal(union.to_game_actions("Atlantis", [0, 4, 5]), [0, 2, 3])
    with pytest.raises(ValueError, match="RIGHT.*not legal in game 'Atlantis'"):
        union.to_game_actions("Atlantis", [2])
    outputs = np.array([[10.0, 11.0, 12.0, 13.0, 14.0, 15.0]])
    np.testing.assert_array_equal(outputs[:, union.game_to_union[1]], [[10, 11, 14, 15]])
    scattered = union.scatter_to_union("Atlantis", np.array([[0.1, 0.2, 0.3, 0.4]]))
    np.testing.assert_allclose(scattered, [[0.1, 0.2, 0.0, 0.0, 0.3, 0.4]])
    with pytest.raises(ValueError, match="has 4 actions"):
        union.scatter_to_union("Breakout", np.ones((1, 6)))


def test_non_ale_meanings_keep_first_appearance_order():
    assert union_of_meanings([["PUSH_RIGHT", "PUSH_LEFT"], ["NOOP", "PUSH_LEFT"]]) == (
        "NOOP",
        "PUSH_RIGHT",
        "PUSH_LEFT",
    )


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="empty"):
        ActionUnion.from_action_meanings({})
    with pytest.raises(ValueError, match="'Pong' lists the action meanings \\['FIRE'\\]"):
        ActionUnion.from_action_meanings({"Pong": ["NOOP", "FIRE", "FIRE"]})
    with pytest.raises(ValueError, match="no actions"):
        ActionUnion.from_action_meanings({"Pong": []})
    union = ActionUnion.from_action_meanings({"Pong": PONG})
    with pytest.raises(KeyError, match="unknown game 'Breakout'"):
        union.game_index("Breakout")
