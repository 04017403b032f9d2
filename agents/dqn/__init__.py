"""DQN experts: TF-Agents ``DqnAgent`` on the games, trained, evaluated and exported.

``agents.dqn.config`` (settings, no TensorFlow), ``agents.dqn.expert`` (agents, training,
evaluation, export, loading), ``agents.dqn.random_experts`` (untrained experts in the same
export format).
"""
