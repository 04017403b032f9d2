"""The union of several games' action sets, and the per-game masks and gathers over it.

An actor-mimic network (Parisotto et al., 2015; the CC paper, section 4) has one output
per action meaning in the union of its games' action sets. Game ``g`` only sees its
legal actions: the student's outputs for game ``g`` are ``tf.gather(outputs,
game_to_union[g], axis=-1)`` (in the game's own action order), and a policy acting in
game ``g`` masks every other output with ``legal_masks[g]``.

Atari meanings are ordered as the ALE's full action set (so a union does not depend on
the order in which games are listed); other meanings follow in order of first
appearance. Everything here is NumPy; nothing imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# The ALE's full action set, in the emulator's own order (ale_py.Action).
ALE_ACTION_MEANINGS: tuple[str, ...] = (
    "NOOP",
    "FIRE",
    "UP",
    "RIGHT",
    "LEFT",
    "DOWN",
    "UPRIGHT",
    "UPLEFT",
    "DOWNRIGHT",
    "DOWNLEFT",
    "UPFIRE",
    "RIGHTFIRE",
    "LEFTFIRE",
    "DOWNFIRE",
    "UPRIGHTFIRE",
    "UPLEFTFIRE",
    "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)
_ALE_RANK = {meaning: rank for rank, meaning in enumerate(ALE_ACTION_MEANINGS)}


def union_of_meanings(action_meanings: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """The ordered union of several action-meaning lists.

    ALE meanings come first, in the ALE's order; any other meaning follows in order of
    first appearance.
    """
    seen: dict[str, int] = {}
    for meanings in action_meanings:
        for meaning in meanings:
            seen.setdefault(meaning, len(seen))
    ale = sorted((m for m in seen if m in _ALE_RANK), key=_ALE_RANK.__getitem__)
    other = sorted((m for m in seen if m not in _ALE_RANK), key=seen.__getitem__)
    return tuple(ale + other)


def _check_meanings(game: str, meanings: Sequence[str]) -> tuple[str, ...]:
    meanings = tuple(str(m) for m in meanings)
    if not meanings:
        raise ValueError(f"game {game!r} has no actions (empty action_meanings).")
    duplicates = sorted({m for m in meanings if meanings.count(m) > 1})
    if duplicates:
        raise ValueError(
            f"game {game!r} lists the action meanings {duplicates} more than once; "
            "each action of a game must have its own meaning."
        )
    return meanings


@dataclasses.dataclass(frozen=True, eq=False)
class ActionUnion:
    """Games, the union of their action meanings, and the index maps between them.

    Attributes:
      games: game names, in the order that defines game indices.
      meanings: the union's action meanings; union action ``u`` is ``meanings[u]``.
      game_meanings: each game's own action meanings, in its environment's order.
      game_to_union: per game, int32 ``[A_g]``: union index of the game's action ``a``.
      legal_masks: bool ``[G, U]``: which union actions each game can take.
      union_to_game: int32 ``[G, U]``: the game's own index of union action ``u``, or -1.
    """

    games: tuple[str, ...]
    meanings: tuple[str, ...]
    game_meanings: tuple[tuple[str, ...], ...]
    game_to_union: tuple[np.ndarray, ...]
    legal_masks: np.ndarray
    union_to_game: np.ndarray

    @classmethod
    def from_action_meanings(cls, action_meanings: Mapping[str, Sequence[str]]) -> ActionUnion:
        """Builds the union from ``{game: [meaning of action 0, meaning of action 1, ...]}``.

        Games keep the mapping's order.
        """
        if not action_meanings:
            raise ValueError("action_meanings is empty: an action union needs at least one game.")
        games = tuple(str(g) for g in action_meanings)
        game_meanings = tuple(_check_meanings(g, action_meanings[g]) for g in games)
        meanings = union_of_meanings(game_meanings)
        rank = {m: u for u, m in enumerate(meanings)}
        game_to_union = tuple(
            np.asarray([rank[m] for m in gm], dtype=np.int32) for gm in game_meanings
        )
        legal_masks = np.zeros((len(games), len(meanings)), dtype=bool)
        union_to_game = np.full((len(games), len(meanings)), -1, dtype=np.int32)
        for g, indices in enumerate(game_to_union):
            legal_masks[g, indices] = True
            union_to_game[g, indices] = np.arange(len(indices), dtype=np.int32)
        for array in (legal_masks, union_to_game, *game_to_union):
            array.setflags(write=False)
        return cls(games, meanings, game_meanings, game_to_union, legal_masks, union_to_game)

    @property
    def num_games(self) -> int:
        return len(self.games)

    @property
    def num_actions(self) -> int:
        """Size of the union (the student network's output width)."""
        return len(self.meanings)

    def num_game_actions(self, game: int | str) -> int:
        return len(self.game_to_union[self.game_index(game)])

    def game_index(self, game: int | str) -> int:
        """Index of a game given by name or index; a clear error for an unknown one."""
        if isinstance(game, (int, np.integer)):
            if not 0 <= int(game) < self.num_games:
                raise IndexError(f"game index {game} out of range for games {self.games}.")
            return int(game)
        try:
            return self.games.index(game)
        except ValueError:
            raise KeyError(f"unknown game {game!r}; the union holds {list(self.games)}.") from None

    def to_game_actions(self, game: int | str, union_actions: np.ndarray) -> np.ndarray:
        """Maps union action indices to the game's own action indices.

        Raises:
          ValueError: if an action is not legal in the game.
        """
        g = self.game_index(game)
        union_actions = np.asarray(union_actions)
        game_actions = self.union_to_game[g][union_actions]
        if np.any(game_actions < 0):
            illegal = sorted({self.meanings[u] for u in union_actions[game_actions < 0].ravel()})
            raise ValueError(f"actions {illegal} are not legal in game {self.games[g]!r}.")
        return game_actions

    def to_union_actions(self, game: int | str, game_actions: np.ndarray) -> np.ndarray:
        """Maps the game's own action indices to union action indices."""
        return self.game_to_union[self.game_index(game)][np.asarray(game_actions)]

    def scatter_to_union(self, game: int | str, game_values: np.ndarray, fill=0.0) -> np.ndarray:
        """Places per-game values ``[..., A_g]`` in union slots ``[..., U]``, ``fill`` elsewhere."""
        g = self.game_index(game)
        game_values = np.asarray(game_values)
        if game_values.shape[-1] != len(self.game_to_union[g]):
            raise ValueError(
                f"game {self.games[g]!r} has {len(self.game_to_union[g])} actions, got values "
                f"with last dimension {game_values.shape[-1]}."
            )
        out = np.full(game_values.shape[:-1] + (self.num_actions,), fill, game_values.dtype)
        out[..., self.game_to_union[g]] = game_values
        return out

    def to_config(self) -> dict:
        """JSON-ready description (games in order and their action meanings)."""
        return {
            "games": list(self.games),
            "union_action_meanings": list(self.meanings),
            "game_action_meanings": {
                g: list(m) for g, m in zip(self.games, self.game_meanings, strict=True)
            },
        }
