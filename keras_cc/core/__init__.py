"""The CC math written once, on an array namespace (TensorFlow or ``keras.ops``).

:mod:`keras_cc.ops` (and through it the TensorFlow Probability distribution) runs it on
TensorFlow; the Keras losses and metrics run it through ``keras.ops`` on the JAX and
PyTorch backends. Lowest room of the package: it imports nothing else of keras_cc.
"""
