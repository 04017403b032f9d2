"""Replay memory that stores each frame once and serves stacked observations.

``keras_cc_agents.replay_buffers.frame_stack_replay.FrameStackReplay``: one ring of frames per
environment stream. It serves transitions (the DQN experts: ``add_batch``/``sample``)
and, built with ``FrameStackReplay.for_states``, states (the actor-mimic students:
``add_states``/``sample_states``).
"""
