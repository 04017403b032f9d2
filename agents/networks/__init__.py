"""Q-networks of the DQN experts and the actor-mimic students (TF-Agents networks).

``keras_cc_agents.networks.q_networks``: the Nature-DQN network and the MLP for vector
observations, built with TF-Agents' ``QNetwork`` and ``EncodingNetwork``.
"""
