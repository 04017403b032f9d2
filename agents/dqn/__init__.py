"""DQN experts: TF-Agents ``DqnAgent`` on the games, trained, evaluated and exported.

``keras_cc_agents.dqn.config`` (settings, no TensorFlow), ``keras_cc_agents.dqn.expert``
(agents, training, evaluation, export, loading), ``keras_cc_agents.dqn.random_experts``
(untrained experts in the same export format).
"""
