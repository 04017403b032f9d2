"""Keras finds keras_cc's saved objects after ``import keras_cc`` alone.

Keras 3 resolves a saved object of another package by its registered name
(``"keras_cc>CCLabelSmoothing"``) in ``keras.saving.get_custom_objects()``; it imports a
module named in a config only for its own packages. ``import keras_cc`` loads its
submodules on first use (``keras_cc/__init__.py``), so it registers a stand-in under each
name instead: a class stand-in builds the real object (``from_config`` or a call), a
function stand-in calls the real function. Either imports the module that defines the
object, whose own ``@keras.saving.register_keras_serializable`` then replaces the stand-in.
"""

import importlib

import keras

PACKAGE = "keras_cc"

# Registered name (after "keras_cc>") -> (module, attribute, kind). A test checks this
# table against what the modules register.
SERIALIZABLE = {
    "CCLabelSmoothing": ("keras_cc.losses", "CCLabelSmoothing", "class"),
    "SparseCCLabelSmoothing": ("keras_cc.losses", "SparseCCLabelSmoothing", "class"),
    "ContinuousCategoricalLoss": ("keras_cc.losses", "ContinuousCategoricalLoss", "class"),
    "TriangularDivergence": ("keras_cc.losses", "TriangularDivergence", "class"),
    "JensenShannonDivergence": ("keras_cc.losses", "JensenShannonDivergence", "class"),
    "continuous_categorical_nll": ("keras_cc.losses", "continuous_categorical_nll", "function"),
    "cc_label_smoothing": ("keras_cc.losses", "cc_label_smoothing", "function"),
    "sparse_cc_label_smoothing": ("keras_cc.losses", "sparse_cc_label_smoothing", "function"),
    "triangular_divergence": ("keras_cc.losses", "triangular_divergence", "function"),
    "jensen_shannon_divergence": ("keras_cc.losses", "jensen_shannon_divergence", "function"),
    "TriangularDivergenceMetric": ("keras_cc.metrics", "TriangularDivergence", "class"),
    "JensenShannonDivergenceMetric": ("keras_cc.metrics", "JensenShannonDivergence", "class"),
    "CCNegativeLogLikelihoodMetric": ("keras_cc.metrics", "CCNegativeLogLikelihood", "class"),
    "ContinuousCategoricalDistillation": (
        "keras_cc.distillation",
        "ContinuousCategoricalDistillation",
        "class",
    ),
}


def _load(module, attribute):
    return getattr(importlib.import_module(module), attribute)


def _class_stand_in(module, attribute):
    """A class whose construction and ``from_config`` return the real class's objects."""

    def construct(cls, *args, **kwargs):
        return _load(module, attribute)(*args, **kwargs)

    def from_config(cls, config):
        return _load(module, attribute).from_config(config)

    return type(
        attribute,
        (),
        {
            "__new__": construct,
            "from_config": classmethod(from_config),
            "__module__": __name__,  # a stand-in, not the class of `module`
            "__doc__": f"Stands for ``{module}.{attribute}`` until that module is loaded.",
        },
    )


def _function_stand_in(module, attribute):
    """A function that calls the real one."""

    def stand_in(*args, **kwargs):
        return _load(module, attribute)(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = attribute
    stand_in.__module__ = module  # what Keras saves beside the name, as for the real one
    stand_in.__doc__ = f"Calls ``{module}.{attribute}``, loading that module."
    return stand_in


def register_stand_ins(unavailable=()):
    """Registers a stand-in under each name of :data:`SERIALIZABLE` not registered yet.

    Args:
      unavailable: modules that cannot be loaded in this process (``keras_cc.distillation``
        before Keras 3.12); their names are left out.
    """
    registered = keras.saving.get_custom_objects()
    for name, (module, attribute, kind) in SERIALIZABLE.items():
        if f"{PACKAGE}>{name}" in registered or module in unavailable:
            continue
        if kind == "class":
            registered[f"{PACKAGE}>{name}"] = _class_stand_in(module, attribute)
        else:
            # The decorator also names the stand-in, so a model that holds it saves again
            # under the same name.
            stand_in = _function_stand_in(module, attribute)
            keras.saving.register_keras_serializable(package=PACKAGE, name=name)(stand_in)
