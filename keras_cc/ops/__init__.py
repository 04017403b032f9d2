"""Pure TensorFlow math of keras-cc (no Keras, no TFP objects; XLA-compilable)."""

from keras_cc.ops import divergences, softmax
from keras_cc.ops.continuous_categorical import (
    cc_closed_form_failure,
    cc_closed_form_log_normalizer,
    cc_covariance,
    cc_log_normalizer,
    cc_log_prob,
    cc_mean,
    cc_sample,
)
from keras_cc.ops.divergences import (
    cosine_distance,
    cross_entropy_divergence,
    jensen_shannon_divergence,
    jensen_shannon_series,
    jensen_shannon_series_terms,
    kullback_leibler_divergence,
    one_against_many,
    pairwise_cosine_distance,
    pairwise_cross_entropy_divergence,
    pairwise_divergence,
    pairwise_jensen_shannon_divergence,
    pairwise_kullback_leibler_divergence,
    pairwise_squared_euclidean_distance,
    pairwise_triangular_divergence,
    pairwise_triangular_divergence_rewritten,
    squared_euclidean_distance,
    triangular_divergence,
    triangular_divergence_rewritten,
    triangular_divergence_v,
)
from keras_cc.ops.softmax import (
    index_of_coincidence,
    measure_of_roughness,
    tempered_log_softmax,
    tempered_softmax,
)
