"""Pure TensorFlow math of keras-cc (no Keras, no TFP objects; XLA-compilable)."""

from keras_cc.ops.continuous_categorical import (
    cc_closed_form_failure,
    cc_closed_form_log_normalizer,
    cc_covariance,
    cc_log_normalizer,
    cc_log_prob,
    cc_mean,
    cc_sample,
)
