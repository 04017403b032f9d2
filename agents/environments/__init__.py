"""Games and their TF-Agents environments.

* ``keras_cc_agents.environments.games``: the registry of games (the CC paper's Atari games, every
  ALE ROM, classic control), with their action names; imports no TensorFlow.
* ``keras_cc_agents.environments.adapters``: gymnasium environments as TF-Agents
  ``PyEnvironment`` (single and batched), Nature-DQN Atari preprocessing, factories.
"""
