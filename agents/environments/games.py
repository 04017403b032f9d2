"""Registry of the games the DQN experts play: the CC paper's Atari games, every ALE ROM,
MinAtar's five games and the classic-control ones.

A game has a short name ("Pong", "SpaceInvaders", "MinAtar/Breakout", "CartPole"), a gymnasium
environment id and the names of its actions in the order of the environment's action
indices. The CC paper's section 4 uses Breakout, Atlantis, Pong and SpaceInvaders
(``PAPER_GAMES``). MinAtar (Young & Tian 2019, the ``minatar`` package) has miniature
versions of five Atari games on 10x10 grids of a few channels (``MINATAR_GAMES``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools

PAPER_GAMES = ("Breakout", "Atlantis", "Pong", "SpaceInvaders")

# MinAtar's games: short name -> the game's module in `minatar.environments`.
_MINATAR_MODULES = {
    "MinAtar/Asterix": "asterix",
    "MinAtar/Breakout": "breakout",
    "MinAtar/Freeway": "freeway",
    "MinAtar/Seaquest": "seaquest",
    "MinAtar/SpaceInvaders": "space_invaders",
}
MINATAR_GAMES = tuple(_MINATAR_MODULES)
# MinAtar's six actions, in the order of its action indices (minatar.Environment).
MINATAR_ACTIONS = ("NOOP", "LEFT", "UP", "RIGHT", "DOWN", "FIRE")
MINATAR_STICKY_ACTION_PROBABILITY = 0.1  # MinAtar's default (minatar.Environment)

# Classic-control games: short name -> (gymnasium id, action meanings).
_CLASSIC_GAMES = {
    "CartPole": ("CartPole-v1", ("LEFT", "RIGHT")),
    "Acrobot": ("Acrobot-v1", ("TORQUE_NEGATIVE", "TORQUE_ZERO", "TORQUE_POSITIVE")),
    "MountainCar": ("MountainCar-v0", ("LEFT", "NOOP", "RIGHT")),
}

# ALE ROMs that only exist as two-player games (no single-player gymnasium id).
_MULTIPLAYER_ONLY_ROMS = ("combat", "joust", "maze_craze", "tic_tac_toe_3d", "warlords")


class UnknownGameError(ValueError):
    """Raised for a game name that is not in the registry; the message lists the known ones."""


@dataclasses.dataclass(frozen=True)
class GameSpec:
    """One playable game.

    Attributes:
      name: short name, e.g. "Pong".
      kind: "atari" (ALE ROM, pixels), "minatar" (MinAtar, 10x10 grids of channels) or
        "classic" (gymnasium classic control, vectors).
      env_id: gymnasium id, e.g. "ALE/Pong-v5", "MinAtar/Breakout-v1" or "CartPole-v1".
      rom: ALE ROM id ("pong", "space_invaders") or MinAtar game module ("breakout"); None
        for classic games.
    """

    name: str
    kind: str
    env_id: str
    rom: str | None = None

    @property
    def is_atari(self) -> bool:
        return self.kind == "atari"

    @property
    def is_minatar(self) -> bool:
        return self.kind == "minatar"

    @property
    def path_name(self) -> str:
        """The name as one path component ("MinAtar_Breakout"), for run directories."""
        return self.name.replace("/", "_")


def _rom_to_name(rom: str) -> str:
    return "".join(part.capitalize() for part in rom.split("_"))


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, GameSpec]:
    games = {
        name: GameSpec(name=name, kind="classic", env_id=env_id)
        for name, (env_id, _) in _CLASSIC_GAMES.items()
    }
    for name, module in _MINATAR_MODULES.items():
        games[name] = GameSpec(name=name, kind="minatar", env_id=f"{name}-v1", rom=module)
    from ale_py import roms

    for rom in roms.get_all_rom_ids():
        if rom in _MULTIPLAYER_ONLY_ROMS:
            continue
        name = _rom_to_name(rom)
        games[name] = GameSpec(name=name, kind="atari", env_id=f"ALE/{name}-v5", rom=rom)
    return games


def available_games() -> list[str]:
    """Short names of every known game: the paper's, MinAtar's, the classic-control ones,
    then ALE's."""
    first = [*PAPER_GAMES, *MINATAR_GAMES, *_CLASSIC_GAMES]
    return first + sorted(name for name in _registry() if name not in first)


def get_game(name: str) -> GameSpec:
    """Returns the `GameSpec` of `name` (case-insensitive; "space_invaders" and
    "minatar_breakout" work too).

    Raises:
      UnknownGameError: `name` is not a known game; the message lists the available games
        and the closest matches.
    """
    registry = _registry()
    if not isinstance(name, str) or not name:
        raise UnknownGameError(f"game must be a non-empty string, got {name!r}.")
    by_lower = {key.lower(): key for key in registry}
    key = (
        by_lower.get(name.lower())
        or by_lower.get(name.lower().replace("_", "/", 1))
        or by_lower.get(_rom_to_name(name).lower())
    )
    if key is not None:
        return registry[key]
    close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    first = [*PAPER_GAMES, *MINATAR_GAMES, *_CLASSIC_GAMES]
    raise UnknownGameError(
        f"Unknown game {name!r}.{hint} Available games: {', '.join(first)} and "
        f"{len(registry) - len(first)} more ALE ROMs (keras_cc_agents.environments.games."
        "available_games() lists them)."
    )


@functools.cache
def action_meanings(name: str, full_action_space: bool = False) -> tuple[str, ...]:
    """Names of the game's actions, indexed like the environment's actions.

    For Atari games this is the ROM's minimal action set (or the 18 legal actions with
    `full_action_space`), in the order ALE and `AtariVectorEnv` use.
    """
    game = get_game(name)
    if game.is_minatar:
        return tuple(MINATAR_ACTIONS[a] for a in _minatar_action_set(game, full_action_space))
    if not game.is_atari:
        return _CLASSIC_GAMES[game.name][1]
    import ale_py
    from ale_py import roms

    ale = ale_py.ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(roms.get_rom_path(game.rom))
    actions = ale.getLegalActionSet() if full_action_space else ale.getMinimalActionSet()
    return tuple(action.name for action in actions)


def _minatar_action_set(game: GameSpec, full_action_space: bool) -> list[int]:
    """MinAtar's action indices of `game`: its minimal set, or all six."""
    if full_action_space:
        return list(range(len(MINATAR_ACTIONS)))
    import importlib

    module = importlib.import_module(f"minatar.environments.{game.rom}")
    return list(module.Env(ramping=True).minimal_action_set())
