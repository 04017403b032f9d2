"""Knowledge distillation with the continuous-categorical likelihood, for ``keras.distillation``.

Hinton et al.'s distillation fits the student's tempered softmax to the teacher's with a
cross-entropy (or KL divergence), which is not a likelihood of soft targets. The CC paper
(Gordon-Rodriguez et al., "Uses and Abuses of the Cross-Entropy Loss", eqs. 2 and 7)
replaces it by the continuous-categorical likelihood of the teacher's tempered softmax,
normalized over the simplex. :class:`ContinuousCategoricalDistillation` is that loss as a
``keras.distillation.DistillationLoss``, for ``keras.distillation.Distiller`` on every
Keras 3 backend.
"""

import keras

from keras_cc import losses
from keras_cc.core import hyperparameters

__all__ = ["ContinuousCategoricalDistillation"]


@keras.saving.register_keras_serializable(package="keras_cc")
class ContinuousCategoricalDistillation(keras.distillation.DistillationLoss):
    """The CC likelihood of the teacher's tempered softmax under the student's tempered logits.

    For teacher logits ``z_t`` and student logits ``z_s`` ([batch, K], the outputs of the
    two models, as ``keras.distillation.LogitsDistillation`` takes them) and temperature
    ``T``, the loss is the batch mean of

        -log p_CC(softmax(z_t / T); eta = z_s / T)
            = log C^{-1}(z_s / T) - softmax(z_t / T) . z_s / T                (CC paper eq. 2)

    (:func:`keras_cc.losses.continuous_categorical_nll` with ``from_logits=True``), times
    ``T²`` when ``scale_by_temperature_squared`` (as ``LogitsDistillation`` scales its KL
    divergence, so that the gradients keep their size as ``T`` grows). It is a negative
    log-density on the simplex, so it can be negative. Float32 in, a float32 scalar out
    (float64 for float64 logits); exact for any number of classes and any logit spread.

    Args:
      temperature: ``T > 0`` dividing both models' logits (default 3.0, as
        ``LogitsDistillation``'s).
      scale_by_temperature_squared: multiply the loss by ``T²`` (default True).

    Raises:
      ValueError: ``temperature`` is not a number > 0; at ``compute_loss``, teacher and
        student outputs of different structure or shape.

    Examples:
        >>> import keras, numpy as np, keras_cc
        >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
        >>> y = x[:, :3].argmax(1).astype("int32")
        >>> teacher = keras.Sequential(
        ...     [keras.Input((8,)), keras.layers.Dense(64, "relu"), keras.layers.Dense(3)]
        ... )
        >>> teacher.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> _ = teacher.fit(x, y, epochs=5, verbose=0)
        >>> student = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
        >>> distiller = keras.distillation.Distiller(
        ...     teacher=teacher,
        ...     student=student,
        ...     distillation_losses=keras_cc.ContinuousCategoricalDistillation(temperature=3.0),
        ...     student_loss_weight=0.5,
        ... )
        >>> student_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> distiller.compile("adam", loss=student_loss)
        >>> history = distiller.fit(x, y, epochs=5, verbose=0)
        >>> bool(np.isfinite(history.history["loss"]).all())
        True
    """

    def __init__(self, temperature=3.0, scale_by_temperature_squared=True):
        self.temperature = hyperparameters.temperature(temperature)
        self.scale_by_temperature_squared = bool(scale_by_temperature_squared)

    def validate_outputs(self, teacher_outputs, student_outputs):
        """Single tensors of the same shape [batch, K] (``ValueError`` otherwise)."""
        super().validate_outputs(teacher_outputs, student_outputs)
        for outputs in (teacher_outputs, student_outputs):
            if isinstance(outputs, list | tuple | dict):
                raise ValueError(
                    "ContinuousCategoricalDistillation takes single-output models: one "
                    f"[batch, num_classes] tensor of logits each; received {type(outputs)}."
                )
        if tuple(teacher_outputs.shape) != tuple(student_outputs.shape):
            raise ValueError(
                "ContinuousCategoricalDistillation: the teacher's and the student's logits "
                f"must have the same shape; received {tuple(teacher_outputs.shape)} and "
                f"{tuple(student_outputs.shape)}."
            )

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """The scalar loss: the batch mean of the per-example CC negative log-likelihood."""
        targets = keras.ops.softmax(
            keras.ops.cast(teacher_outputs, "float32") * (1.0 / self.temperature), axis=-1
        )
        per_example = losses.continuous_categorical_nll(
            keras.ops.stop_gradient(targets),
            student_outputs,
            from_logits=True,
            temperature=self.temperature,
        )
        loss = keras.ops.mean(per_example)
        if self.scale_by_temperature_squared:
            loss = loss * self.temperature**2
        return loss

    def get_config(self):
        return {
            "temperature": self.temperature,
            "scale_by_temperature_squared": self.scale_by_temperature_squared,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
