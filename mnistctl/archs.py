"""Architecture registry: ``@register_arch("mlp")`` keys a Keras model builder and its training recipe.

Every builder returns a model that takes raw pixels, shape (N, 28, 28) float32 in 0..255, and
outputs 10 softmax probabilities; the /255 scaling lives inside the model (a ``Rescaling`` layer)
so training, Keras inference and the exported .tflite all see the same input.
Keras is imported inside the builders only: listing architectures stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistctl.errors import UsageError

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Recipe:
    """How an architecture is trained by default; command-line flags override most fields."""

    optimizer: str  # a keras.optimizers class name
    learning_rate: float
    batch_size: int
    epochs: int
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    loss: str = "categorical_crossentropy"
    # "constant", or "one-cycle": linear warm-up to learning_rate over the first 20% of the steps,
    # then cosine decay to zero (Keras' CosineDecay with warmup, so it saves and reloads as is).
    schedule: str = "constant"
    # Train with on-the-fly augmentation unless told otherwise (``--augment`` / ``--no-augment``).
    augment: bool = False
    # Whether augmentation also thickens and thins strokes, or only moves, turns and scales digits.
    augment_strokes: bool = True
    # A named profile of mnistctl.augment.PROFILES that replaces the two fields above ("" : none).
    augment_profile: str = ""
    # Spread this much of each target's probability evenly over all ten classes (0: one-hot targets).
    label_smoothing: float = 0.0
    # Train in mixed bfloat16 where the CPU multiplies bfloat16 natively (the model is stored as float32).
    mixed_bfloat16: bool = False
    # Epochs on another data set than MNIST where MNIST's count falls short (data set name -> epochs).
    dataset_epochs: dict[str, int] = field(default_factory=dict)

    def epochs_for(self, dataset: str) -> int:
        """The default number of epochs on ``dataset``."""
        return self.dataset_epochs.get(dataset, self.epochs)


@dataclass(frozen=True)
class Architecture:
    name: str
    description: str
    recipe: Recipe
    build: Callable[[], keras.Model]


_REGISTRY: dict[str, Architecture] = {}


def register_arch(name: str, *, description: str, recipe: Recipe) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register a model builder under ``name`` with its recipe."""

    def decorator(builder: Callable[[], Any]) -> Callable[[], Any]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[name] = Architecture(name, description, recipe, builder)
        return builder

    return decorator


def arch_names() -> list[str]:
    """Registered architecture names, in registration order."""
    return list(_REGISTRY)


# ``train --arch FILE.py:FUNCTION`` or ``--arch FILE.json`` (mnistctl.user_arch): recorded under this name, with
# this recipe, and built from the file's text that the run records (never listed among the choices).
CUSTOM_ARCH = "custom"
CUSTOM_RECIPE = Recipe(optimizer="Adam", learning_rate=0.001, batch_size=128, epochs=5)


def _custom_needs_its_source() -> Any:
    raise UsageError(f"architecture {CUSTOM_ARCH!r} is built from its file: use build_model(..., source=...)")


_CUSTOM = Architecture(
    CUSTOM_ARCH, "your own model: --arch FILE.py:FUNCTION or FILE.json", CUSTOM_RECIPE, _custom_needs_its_source
)


def get_arch(name: str) -> Architecture:
    """The architecture called ``name``; an unknown name is a usage error that lists the choices."""
    if name == CUSTOM_ARCH:
        return _CUSTOM
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown architecture {name!r}", hint="choose one of: " + ", ".join(_REGISTRY)) from None


# Named augmentations (mnistctl.augment): here, so the CLI can know them without importing numpy.
AUGMENT_PROFILES = ("standard", "geometry", "wild")

ONE_CYCLE_WARMUP = 0.2
# The Adam betas of both one-cycle recipes (Keras' default beta_2 is 0.999).
FAST_ADAM_BETAS = {"beta_1": 0.9, "beta_2": 0.99}


def build_optimizer(recipe: Recipe, learning_rate: float | None = None, total_steps: int | None = None) -> Any:
    """A fresh optimizer for ``recipe`` (``learning_rate`` overrides the recipe's peak rate)."""
    import keras

    cls = getattr(keras.optimizers, recipe.optimizer)
    rate: Any = recipe.learning_rate if learning_rate is None else learning_rate
    if recipe.schedule == "one-cycle" and total_steps:
        rate = one_cycle(rate, total_steps)
    return cls(learning_rate=rate, **recipe.optimizer_options)


def build_loss(loss: str, label_smoothing: float = 0.0) -> Any:
    """The loss to compile with: its Keras name, or a smoothed categorical cross-entropy."""
    if not label_smoothing:
        return loss
    if loss != "categorical_crossentropy":
        raise ValueError(f"label smoothing needs categorical_crossentropy, not {loss!r}")
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)


def native_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX-512 BF16).

    Only then does mixed bfloat16 pay: elsewhere it is emulated, and slower than float32.
    """
    try:
        text = cpuinfo.read_text()
    except OSError:  # not Linux, or no /proc: assume not
        return False
    return re.search(r"\b(amx_bf16|avx512_bf16)\b", text) is not None


def build_model(name: str, precision: str = "float32", source: dict[str, Any] | None = None) -> keras.Model:
    """A fresh model of architecture ``name`` whose layers compute in ``precision`` (a Keras dtype policy).

    ``source``: for CUSTOM_ARCH, the recorded file (mnistctl.user_arch.read_source) to build it from.
    """
    import keras

    if name == CUSTOM_ARCH:
        from mnistctl.user_arch import build_user_model

        if not source:
            raise UsageError(f"architecture {CUSTOM_ARCH!r} needs its recorded source file")
        return build_user_model(source)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return get_arch(name).build()
    finally:
        keras.config.set_dtype_policy(previous)


def float32_copy(model: keras.Model, name: str) -> keras.Model:
    """``model`` (of architecture ``name``) with float32 computation and the same weights.

    Mixed-precision layers keep their weights in float32, so nothing is rounded; the copy is what
    gets evaluated, stored and converted to .tflite. It is compiled for evaluation only.
    """
    copy = build_model(name, "float32")
    copy.set_weights(model.get_weights())
    copy.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    return copy


def one_cycle(peak: float, total_steps: int) -> Any:
    """Linear warm-up from peak/10 to ``peak`` over 20% of the steps, then cosine decay to zero."""
    import keras

    warmup = max(1, int(total_steps * ONE_CYCLE_WARMUP))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(1, total_steps - warmup),
        warmup_target=peak,
        warmup_steps=warmup,
    )


def raw_pixels(reshape_to: tuple[int, ...], reshape_name: str) -> list[Any]:
    """The shared front of every model: 28x28 pixels in 0..255, scaled by 1/255, reshaped."""
    import keras
    from keras import layers

    return [
        keras.Input(shape=(28, 28), name="pixels"),
        layers.Rescaling(1.0 / 255, name="scale"),
        layers.Reshape(reshape_to, name=reshape_name),
    ]


def conv_bn_relu(filters: int, *, momentum: float = 0.99) -> list[Any]:
    """A 3x3 same-padded convolution without bias (BatchNorm's shift replaces it), BatchNorm, ReLU.

    ``momentum`` is how slowly BatchNorm's moving statistics (used at inference) follow the batches. Keras'
    0.99 averages over ~100 steps: after a short first epoch they still hold much of their start values and
    of the early, fast-changing network, so validation accuracy can read far below training accuracy.
    """
    from keras import layers

    return [
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        layers.BatchNormalization(momentum=momentum),
        layers.ReLU(),
    ]


@register_arch(
    "mlp",
    description="The classic Keras MLP: 784-512-512-10, dropout 0.2, Adam (97.46% in 4 epochs)",
    recipe=Recipe(optimizer="Adam", learning_rate=0.001, batch_size=128, epochs=4),
)
def build_mlp() -> keras.Model:
    import keras
    from keras import layers

    return keras.Sequential(
        [
            *raw_pixels((784,), "flatten"),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ],
        name="mlp",
    )


@register_arch(
    "cnn",
    description="The classic Keras CNN: conv32, conv64, maxpool, dropout, dense 128, Adadelta (99.19% in 12 epochs)",
    # Keras 2 defaulted Adadelta to learning_rate=1.0; today's 0.001 leaves this CNN near 84%.
    recipe=Recipe(optimizer="Adadelta", learning_rate=1.0, batch_size=128, epochs=12, optimizer_options={"rho": 0.95}),
)
def build_cnn() -> keras.Model:
    import keras
    from keras import layers

    return keras.Sequential(
        [
            *raw_pixels((28, 28, 1), "channels"),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )


@register_arch(
    "fastcnn",
    description="A fast CNN: pool before widening, BatchNorm, one-cycle Adam (99% in about a minute on 2 CPUs)",
    recipe=Recipe(
        optimizer="Adam",
        learning_rate=0.01,
        batch_size=256,
        epochs=4,
        optimizer_options=FAST_ADAM_BETAS,
        schedule="one-cycle",
        # Fashion-MNIST is harder: 4 epochs reached 91.0%, 8 reached 91.6% and 12 reached 92.0% (seed 1,
        # tests/bench/RESULTS.md), still in under two minutes on 2 CPUs.
        dataset_epochs={"fashion-mnist": 12},
    ),
)
def build_fastcnn() -> keras.Model:
    import keras
    from keras import layers

    def block(filters: int) -> list[Any]:
        # Convolve, normalise, activate, then halve: each block widens only after the image shrank,
        # so the costly wide convolutions run on 14x14 and 7x7 maps (1.9 M multiply-adds in all,
        # against 12 M for the classic CNN).
        # Momentum 0.9: 211 steps per epoch is too few for Keras' 0.99 (epoch 1 validated at 0.13 against 0.91
        # in training); the weights trained are the same either way (tests/bench/RESULTS.md).
        return [*conv_bn_relu(filters, momentum=0.9), layers.MaxPooling2D(2)]

    return keras.Sequential(
        [
            *raw_pixels((28, 28, 1), "channels"),
            *block(16),
            *block(32),
            *block(64),
            layers.Flatten(),
            layers.Dropout(0.25),
            layers.Dense(10, activation="softmax"),
        ],
        name="fastcnn",
    )


@register_arch(
    "wildcnn",
    description="fastcnn widened for digits from real documents, trained with --augment wild (the builtin model)",
    recipe=Recipe(
        optimizer="Adam",
        learning_rate=0.01,
        batch_size=256,
        epochs=15,
        optimizer_options=FAST_ADAM_BETAS,
        schedule="one-cycle",
        augment=True,
        augment_profile="wild",
    ),
)
def build_wildcnn() -> keras.Model:
    import keras
    from keras import layers

    # fastcnn's shape at twice the width, with its third convolution at 7x7 before the last halving:
    # 7.5 M multiply-adds, which LiteRT runs at well over 2,000 images/s here, against 1.9 M for fastcnn,
    # whose 29 k parameters could not learn the wild profile's distortions and keep 99.3% on MNIST.
    return keras.Sequential(
        [
            *raw_pixels((28, 28, 1), "channels"),
            *conv_bn_relu(32),
            layers.MaxPooling2D(2),
            *conv_bn_relu(64),
            layers.MaxPooling2D(2),
            *conv_bn_relu(128),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.3),
            layers.Dense(10, activation="softmax"),
        ],
        name="wildcnn",
    )


@register_arch(
    "strongcnn",
    description="A strong CNN: five BatchNorm conv layers, one-cycle Adam, augmented (geometry only) by default",
    recipe=Recipe(
        optimizer="Adam",
        learning_rate=0.004,
        batch_size=128,
        epochs=26,
        optimizer_options=FAST_ADAM_BETAS,
        schedule="one-cycle",
        augment=True,
        # A 3x3 dilation can close a small loop and an erosion can break a thin stroke, turning a digit
        # into another; for the accuracy pick, geometry only.
        augment_strokes=False,
        label_smoothing=0.1,
        # 1.3x to 1.4x faster per epoch on an AMX CPU, which paid for the extra epochs.
        mixed_bfloat16=True,
    ),
)
def build_strongcnn() -> keras.Model:
    import keras
    from keras import layers

    # One cheap convolution at full resolution, then two at 14x14 and two at 7x7: 22 M multiply-adds
    # per image. A second 28x28 convolution would cost 45% more time per epoch. Width was not the
    # limit (at 48 and 96 filters it levelled off where this one did without label smoothing, at
    # 99.57%); label smoothing and the epochs that bfloat16 paid for took it to 99.65%.
    return keras.Sequential(
        [
            *raw_pixels((28, 28, 1), "channels"),
            *conv_bn_relu(32),
            layers.MaxPooling2D(2),
            *conv_bn_relu(64),
            *conv_bn_relu(64),
            layers.MaxPooling2D(2),
            *conv_bn_relu(128),
            *conv_bn_relu(128),
            layers.Flatten(),
            layers.Dropout(0.3),
            # float32 even in mixed precision: a bfloat16 softmax rounds probabilities near 1.
            layers.Dense(10, activation="softmax", dtype="float32"),
        ],
        name="strongcnn",
    )
