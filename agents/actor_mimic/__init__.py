"""Actor-mimic students (AMN, CC-AMN) distilled from DQN experts, and the CC paper's report.

``keras_cc_agents.actor_mimic.config`` (settings, no TensorFlow), ``agent`` (the TF-Agents
``TFAgent``), ``losses``, ``action_union``, ``trainer`` and ``report`` (Table 3, Figure 2).
"""
