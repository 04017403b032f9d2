"""Shared test configuration.

Nothing global is set up here: ``import keras_cc`` needs no environment variable (see
``keras_cc/_environment.py``). The TF-Agents tests route ``tf.keras`` to Keras 2 in
``tests/agents/conftest.py`` by importing ``keras_cc_agents``.
"""
