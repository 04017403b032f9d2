"""The two training protocols of the ablation: this package's ``standard`` and the ``paper``'s.

A protocol fixes how the network, the losses, the data and the reported number are set
up; the per-dataset numbers (epochs, batch size, width, batch-norm momentum,
augmentation on or off) are defaults of the flags that the protocol fills in.

``standard`` (the default): conv → batch norm → ELU; L2 on every kernel; random crop
after 4-pixel padding and horizontal flip; per-channel standardization; losses averaged
over the batch; the final test accuracy reported, with the sample standard deviation.

``paper``: the CC paper's Table 1 as its authors ran it (read from their public code,
``cunningham-lab/cb_and_cc``, ``cc/icbinb/ls``, TensorFlow 2.2): conv → ELU →
batch norm (convolutions keep their bias); L2 only on the final dense kernel; Adam 1e-3
without a schedule, batch 128; random rotation up to 15°, width and height shifts up to
10 % and horizontal flip, with one scalar mean and standard deviation; the
cross-entropy averaged over the batch, LS and CC-LS summed over it; every optimizer step
with a non-finite gradient skipped; the maximum test accuracy over epochs reported, with
the population standard deviation over seeds.
"""

from __future__ import annotations

import dataclasses

__all__ = ["PROTOCOLS", "Protocol", "get_protocol"]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one protocol sets up a cell (see the module docstring).

    Attributes:
        name: ``"standard"`` or ``"paper"``.
        layer_order: ``"conv_bn_elu"`` or ``"conv_elu_bn"``.
        weight_decay_on: ``"kernels"`` (every kernel) or ``"logits"`` (the final dense
            kernel only).
        augmentation: ``"crop_flip"`` or ``"rotate_shift_flip"``.
        standardization: ``"channel"`` (a mean and variance per channel) or ``"scalar"``.
        summed_losses: losses reduced by the batch sum (the rest: the batch mean).
        skip_nonfinite_steps: skip optimizer steps with a non-finite gradient, whatever
            the loss (``cc_ls_published`` always does).
        reported: the record fields the tables show, the headline first.
        std_ddof: 0 for the population, 1 for the sample standard deviation over seeds.
        defaults: per dataset, the values of flags left unset.
    """

    name: str
    layer_order: str
    weight_decay_on: str
    augmentation: str
    standardization: str
    summed_losses: tuple[str, ...]
    skip_nonfinite_steps: bool
    reported: tuple[str, ...]
    std_ddof: int
    defaults: dict = dataclasses.field(repr=False)


PROTOCOLS = {
    "standard": Protocol(
        name="standard",
        layer_order="conv_bn_elu",
        weight_decay_on="kernels",
        augmentation="crop_flip",
        standardization="channel",
        summed_losses=(),
        skip_nonfinite_steps=False,
        reported=("final_test_accuracy", "selected_test_accuracy"),
        std_ddof=1,
        defaults={
            # digits: the README's main job, minutes on 2 CPU cores.
            "digits": dict(
                epochs=10, batch_size=64, width=0.5, augment=False, batch_norm_momentum=0.9
            ),
            "cifar10": dict(
                epochs=100, batch_size=128, width=1.0, augment=True, batch_norm_momentum=0.9
            ),
        },
    ),
    "paper": Protocol(
        name="paper",
        layer_order="conv_elu_bn",
        weight_decay_on="logits",
        augmentation="rotate_shift_flip",
        standardization="scalar",
        summed_losses=("ls", "cc_ls", "cc_ls_published"),
        skip_nonfinite_steps=True,
        reported=("max_test_accuracy", "selected_test_accuracy", "final_test_accuracy"),
        std_ddof=0,
        defaults={
            # digits: ~11 steps an epoch; 300 epochs let every loss, CC-LS included,
            # reach its plateau (the curves show it).
            "digits": dict(
                epochs=300, batch_size=128, width=1.0, augment=True, batch_norm_momentum=0.99
            ),
            # CIFAR-10: the authors' 500 epochs of ~391 batches.
            "cifar10": dict(
                epochs=500, batch_size=128, width=1.0, augment=True, batch_norm_momentum=0.99
            ),
        },
    ),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; ``ValueError`` naming ``--protocol`` otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(
            f"--protocol={name!r} is unknown; choose one of {sorted(PROTOCOLS)}."
        ) from None
