"""On-the-fly augmentation for ``train --augment``: shifts, rotations, scaling and stroke thickness.

It runs in the tf.data input pipeline, not in the model, so saved models and their .tflite files
stay exactly the architecture. Photos of real handwriting vary most in position, slant, size and
pen width, and so do these transformations. A recipe may leave stroke width out (geometry only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnistctl.tf_runtime import import_keras

ROTATION_DEGREES = 10
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1
THICKEN_PROBABILITY = 0.2
THIN_PROBABILITY = 0.2


def augmented_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int, *, strokes: bool = True
) -> Any:
    """A shuffled, batched, augmented ``tf.data.Dataset`` over in-memory arrays.

    ``strokes=False`` leaves stroke width alone (geometry only).
    """
    keras = import_keras()
    import tensorflow as tf
    from keras import layers

    geometry = keras.Sequential(
        [
            layers.RandomRotation(ROTATION_DEGREES / 360, fill_mode="constant", seed=seed),
            layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom(ZOOM_FRACTION, fill_mode="constant", seed=seed + 2),
        ]
    )
    generator = tf.random.Generator.from_seed(seed + 3)

    def stroke_width(batch: Any) -> Any:
        # Dilation (max over 3x3) thickens strokes and erosion (min over 3x3) thins them, per image.
        thick = tf.nn.max_pool2d(batch, 3, 1, "SAME")
        thin = -tf.nn.max_pool2d(-batch, 3, 1, "SAME")
        draw = generator.uniform([tf.shape(batch)[0], 1, 1, 1])
        batch = tf.where(draw < THICKEN_PROBABILITY, thick, batch)
        return tf.where(draw > 1 - THIN_PROBABILITY, thin, batch)

    def augment(batch: Any, targets: Any) -> tuple[Any, Any]:
        batch = geometry(batch[..., None], training=True)
        if strokes:
            batch = stroke_width(batch)
        return tf.squeeze(batch, -1), targets

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
