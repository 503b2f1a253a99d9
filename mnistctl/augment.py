"""On-the-fly augmentation for ``train --augment PROFILE``: what real handwriting does to a digit.

It runs in the tf.data input pipeline, not in the model, so saved models and their .tflite files
stay exactly the architecture. Profiles:

- ``standard``: shifts, rotations, scaling and stroke thickness (photos of real handwriting vary most
  in position, slant, size and pen width);
- ``geometry``: the same without stroke thickness (a 3x3 dilation can close a small loop);
- ``wild``: what digits from real documents look like after preprocessing -- slant and elastic
  distortion of sloppy writing, broken strokes, aspect ratios lost by stretched 16x16 scans, thin pens
  and thick markers, blur, low resolution and re-binarisation, and remnants of ruling lines and specks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnistctl.archs import AUGMENT_PROFILES as PROFILES
from mnistctl.tf_runtime import import_keras

ROTATION_DEGREES = 10
SHIFT_FRACTION = 0.1
ZOOM_FRACTION = 0.1
THICKEN_PROBABILITY = 0.2
THIN_PROBABILITY = 0.2

# wild: a third of the images are left clean, so MNIST itself stays learnt as well as before.
WILD_CLEAN = 0.3
WILD_ROTATION_DEGREES = 12
WILD_SHEAR = 0.25  # slant: fraction of the width the top moves against the bottom
WILD_ELASTIC = 0.5  # share of the distorted images that are also elastically warped...
WILD_ELASTIC_PX = 1.2  # ...by displacements of this standard deviation (pixels)
WILD_THICKEN, WILD_MARKER, WILD_THIN = 0.2, 0.04, 0.15
WILD_BLUR = 0.2
WILD_LOW_RES = (
    0.35  # drawn at 10-22 px for the whole frame (a 16x16 scan's digit, a 10 px digit in a form), then scaled back
)
WILD_MIN_SIDE = 10
# Targets of digits drawn this small are smoothed by this much (0.15: 0.865 for the right digit).
WILD_UNSURE_SIDE = 14
WILD_UNSURE_SMOOTHING = 0.15
WILD_BINARISE = 0.5  # of the low-resolution ones: re-binarised as many scans are
WILD_BREAKS = 0.1
WILD_STRETCH = 0.08  # stretched to fill the 20x20 box, then always at low resolution
WILD_LINE = 0.12
WILD_SPECKS = 0.12


def augmented_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    *,
    strokes: bool = True,
    profile: str | None = None,
) -> Any:
    """A shuffled, batched, augmented ``tf.data.Dataset`` over in-memory arrays.

    ``profile`` names one of ``PROFILES``; without it, ``strokes`` picks ``standard`` or ``geometry``.
    """
    import tensorflow as tf

    profile = profile or ("standard" if strokes else "geometry")
    if profile not in PROFILES:
        raise ValueError(f"unknown augmentation profile {profile!r}")
    transform = _wild(seed) if profile == "wild" else _standard(seed, strokes=profile == "standard")

    def augment(batch: Any, targets: Any) -> tuple[Any, Any]:
        return transform(batch, targets)

    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    return dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _standard(seed: int, *, strokes: bool) -> Any:
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

    def transform(batch: Any, targets: Any) -> tuple[Any, Any]:
        batch = geometry(batch[..., None], training=True)
        if strokes:
            batch = stroke_width(batch)
        return tf.squeeze(batch, -1), targets

    return transform


def _wild(seed: int) -> Any:
    keras = import_keras()
    import tensorflow as tf
    from keras import layers

    geometry = keras.Sequential(
        [
            layers.RandomShear(x_factor=WILD_SHEAR, fill_mode="constant", seed=seed),
            layers.RandomRotation(WILD_ROTATION_DEGREES / 360, fill_mode="constant", seed=seed + 1),
            # Height and width zoom independently: stretched scans change a digit's aspect ratio.
            layers.RandomZoom((-0.15, 0.15), (-0.3, 0.25), fill_mode="constant", seed=seed + 2),
            layers.RandomTranslation(SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="constant", seed=seed + 3),
        ]
    )
    generator = tf.random.Generator.from_seed(seed + 5)
    grid = tf.range(28, dtype=tf.float32)

    def uniform(count: Any, low: float = 0.0, high: float = 1.0) -> Any:
        return generator.uniform([count, 1, 1, 1], low, high)

    def transform(batch: Any, targets: Any) -> tuple[Any, Any]:
        original, original_targets = batch[..., None], targets
        count = tf.shape(original)[0]
        batch = geometry(original, training=True)
        batch = tf.where(uniform(count) < WILD_ELASTIC, _elastic(batch, generator), batch)

        draw = uniform(count)
        thick = tf.nn.max_pool2d(batch, 3, 1, "SAME")
        marker = tf.nn.max_pool2d(thick, 3, 1, "SAME")
        thin = -tf.nn.max_pool2d(-batch, 3, 1, "SAME")
        batch = tf.where(draw < WILD_THICKEN, thick, batch)
        batch = tf.where((draw >= WILD_THICKEN) & (draw < WILD_THICKEN + WILD_MARKER), marker, batch)
        batch = tf.where(draw > 1 - WILD_THIN, thin, batch)

        blurred = tf.nn.avg_pool2d(tf.pad(batch, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 1, "VALID")
        mix = uniform(count, 0.3, 1.0)
        batch = tf.where(uniform(count) < WILD_BLUR, batch * (1 - mix) + blurred * mix, batch)

        # Broken strokes: a fast pen skips, a light one fades below the threshold.
        holes = tf.nn.max_pool2d(tf.cast(generator.uniform(tf.shape(batch)) < 0.012, tf.float32), 3, 1, "SAME")
        batch = tf.where(uniform(count) < WILD_BREAKS, batch * (1.0 - holes), batch)

        # Normalised scans (Semeion) stretch every digit to fill its box, whatever its shape.
        stretch = uniform(count) < WILD_STRETCH
        batch = tf.where(stretch, _stretched(batch), batch)

        # Low resolution: the whole batch at one random size (a size per image would need a loop).
        side = generator.uniform([], WILD_MIN_SIDE, 23, dtype=tf.int32)
        small = tf.image.resize(batch, tf.stack([side, side]), method="area")
        peak = tf.reduce_max(small, axis=[1, 2, 3], keepdims=True)
        binary = tf.where(small > peak * uniform(count, 0.45, 0.6), 255.0, 0.0)
        small = tf.where(uniform(count) < WILD_BINARISE, binary, small)
        coarse = tf.image.resize(small, [28, 28], method="bilinear")
        coarsened = (uniform(count) < WILD_LOW_RES) | stretch
        batch = tf.where(coarsened, coarse, batch)
        # A digit a dozen pixels tall is often unreadable: teach the network to say so rather than guess.
        unsure = coarsened[:, 0, 0, :] & (side <= WILD_UNSURE_SIDE)
        targets = tf.where(unsure, targets * (1 - WILD_UNSURE_SMOOTHING) + WILD_UNSURE_SMOOTHING / 10, targets)

        # A remnant of a ruling line along one edge, over part or all of it.
        vertical = uniform(count) < 0.5
        near_start = uniform(count) < 0.5
        offset = tf.floor(uniform(count, 0.0, 4.0))
        position = tf.where(near_start, offset, 27.0 - offset)
        start = tf.floor(uniform(count, 0.0, 14.0))
        end = start + tf.floor(uniform(count, 10.0, 29.0))
        rows, cols = grid[None, :, None, None], grid[None, None, :, None]
        across, along = tf.where(vertical, cols, rows), tf.where(vertical, rows, cols)
        line = tf.cast((across == position) & (along >= start) & (along < end), tf.float32)
        line *= uniform(count, 80.0, 255.0)
        batch = tf.where(uniform(count) < WILD_LINE, tf.maximum(batch, line), batch)

        specks = tf.cast(generator.uniform(tf.shape(batch)) < 0.006, tf.float32) * uniform(count, 100.0, 255.0)
        batch = tf.where(uniform(count) < WILD_SPECKS, tf.maximum(batch, specks), batch)

        # Preprocessing scales every digit's peak to 255; so must this (area averaging and blur dim it).
        peak = tf.reduce_max(batch, axis=[1, 2, 3], keepdims=True)
        batch = tf.clip_by_value(batch * (255.0 / tf.maximum(peak, 1.0)), 0.0, 255.0)
        clean = uniform(count) < WILD_CLEAN
        batch = tf.where(clean, original, batch)
        targets = tf.where(clean[:, 0, 0, :], original_targets, targets)
        return tf.squeeze(batch, -1), targets

    return transform


def _stretched(batch: Any) -> Any:
    """Each digit's ink box stretched to fill the 20x20 box in 28x28, aspect ratio lost (a "1" turns into
    a bar as wide as it is tall), as 16x16 normalised scans are."""
    import tensorflow as tf

    count = tf.shape(batch)[0]
    index = tf.range(28, dtype=tf.float32)[None]
    ink = batch[..., 0] > 64.0
    rows, cols = tf.reduce_any(ink, axis=2), tf.reduce_any(ink, axis=1)
    top = tf.reduce_min(tf.where(rows, index, 27.0), axis=1)
    bottom = tf.reduce_max(tf.where(rows, index, 0.0), axis=1)
    left = tf.reduce_min(tf.where(cols, index, 27.0), axis=1)
    right = tf.reduce_max(tf.where(cols, index, 0.0), axis=1)
    boxes = tf.stack([top, left, tf.maximum(bottom, top + 1), tf.maximum(right, left + 1)], axis=1) / 27.0
    crops = tf.image.crop_and_resize(batch, boxes, tf.range(count), [20, 20])
    return tf.pad(crops, [[0, 0], [4, 4], [4, 4], [0, 0]])


def _elastic(batch: Any, generator: Any) -> Any:
    """Warp each image by its own smooth random displacement (up to ~2 px): the wobble of fast writing.

    A 4x4 grid of random shifts, upsampled smoothly to 28x28, moves every pixel; the image is sampled
    bilinearly at the moved positions. (Keras' RandomElasticTransform gives every image of a batch
    inside tf.data the same result, so it cannot be used here.)
    """
    import tensorflow as tf

    count = tf.shape(batch)[0]
    coarse = generator.normal([count, 4, 4, 2], stddev=WILD_ELASTIC_PX)
    flow = tf.image.resize(coarse, [28, 28], method="bicubic")
    rows, cols = tf.meshgrid(tf.range(28, dtype=tf.float32), tf.range(28, dtype=tf.float32), indexing="ij")
    y = tf.clip_by_value(rows[None] + flow[..., 0], 0.0, 27.0)
    x = tf.clip_by_value(cols[None] + flow[..., 1], 0.0, 27.0)
    y0, x0 = tf.floor(y), tf.floor(x)
    y1, x1 = tf.minimum(y0 + 1, 27.0), tf.minimum(x0 + 1, 27.0)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    index = tf.broadcast_to(tf.range(count)[:, None, None], tf.shape(y0))

    def at(row: Any, col: Any) -> Any:
        return tf.gather_nd(batch, tf.stack([index, tf.cast(row, tf.int32), tf.cast(col, tf.int32)], axis=-1))

    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy
