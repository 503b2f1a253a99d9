"""Which devices ``train`` runs on: ``--devices all|N|cpu``.

* ``all`` (the default): every GPU there is, or the CPU on a machine without one.
* ``N``: the first N GPUs; more than the machine has is a usage error.
* ``cpu``: the CPU, with every GPU hidden from TensorFlow.

One device trains directly. Several train through ``tf.distribute.MirroredStrategy``, one replica per device,
each holding a copy of the model and the gradients summed across them every step. ``--batch-size`` is the
global batch: each step takes B images, split evenly across the R replicas (B / R each), so a run takes the
same steps per epoch over the same data, with the same learning-rate schedule, on any number of devices, and
an interrupted run may resume on other devices. The version's params record the devices and replicas used.

Multi-host training (``MultiWorkerMirroredStrategy``) is not offered: Keras 3's ``fit`` does not work under it
(keras-team/keras#20585).

``MNISTCTL_LOGICAL_CPUS=N`` (for tests) splits the CPU into N logical devices, which stand in for GPUs on a
machine without one: ``all`` then trains through MirroredStrategy over N replicas.

``select`` must run after TensorFlow is imported and before it initialises its devices (before any op runs):
TensorFlow fixes the visible and logical devices then.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from mnistctl.errors import UsageError

LOGICAL_CPUS_ENV = "MNISTCTL_LOGICAL_CPUS"
MAX_LOGICAL_CPUS = 64


def parse_devices(text: str) -> str:
    """``--devices`` checked and normalised: "all", "cpu", or a whole number of devices from 1 (as text)."""
    value = text.strip().lower()
    if value in ("all", "cpu"):
        return value
    if value.isdigit() and int(value) >= 1:
        return str(int(value))
    raise UsageError(f"--devices must be all, cpu or a number of GPUs from 1, got {text!r}")


@dataclass(frozen=True)
class Placement:
    """The devices a run trains on, and the strategy that spreads it over them (None for one device)."""

    devices: tuple[str, ...]
    strategy: Any = None

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.strategy is not None else 1

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Where models are created, compiled and loaded: the strategy's scope, or nothing special."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def record(self) -> dict[str, Any]:
        """What the version's params record."""
        return {"devices": list(self.devices), "replicas": self.replicas}

    def describe(self, batch_size: int) -> str:
        """For the train start line, e.g. "on CPU", "on GPU:0", "on 2 devices (GPU:0, GPU:1), 64 per replica"."""
        if self.replicas == 1:
            return "on " + self.devices[0]
        share = f"{batch_size / self.replicas:g}"
        return f"on {self.replicas} devices ({', '.join(self.devices)}), MirroredStrategy, {share} per replica"


def _logical_cpus() -> int:
    """``MNISTCTL_LOGICAL_CPUS`` (0 when unset)."""
    text = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
    if not text:
        return 0
    if not text.isdigit() or not 1 <= int(text) <= MAX_LOGICAL_CPUS:
        raise UsageError(f"{LOGICAL_CPUS_ENV} must be a whole number from 1 to {MAX_LOGICAL_CPUS}, got {text!r}")
    return int(text)


def _short(name: str) -> str:
    """ "/physical_device:GPU:0" or "/device:CPU:1" -> "GPU:0" / "CPU:1"."""
    return name.split("device:")[-1]


def select(spec: str) -> Placement:
    """The placement for ``--devices spec`` (as ``parse_devices`` returns it), configuring TensorFlow for it."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    split = _logical_cpus()
    if split:
        cpu = tf.config.list_physical_devices("CPU")[0]
        # Already initialised (a second run in one process): keep what it has.
        with contextlib.suppress(RuntimeError):
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * split)
    if spec == "cpu":
        if gpus:
            with contextlib.suppress(RuntimeError):
                tf.config.set_visible_devices([], "GPU")
        return Placement(("CPU",))
    if gpus:
        kind, available = "GPU", len(gpus)
    elif split > 1:
        kind, available = "CPU", split
    else:
        kind, available = "", 0
    wanted = available if spec == "all" else int(spec)
    if wanted > available:
        have = f"{available} GPU" + ("" if available == 1 else "s") if kind != "CPU" else f"{available} logical CPUs"
        raise UsageError(
            f"--devices {spec}: this machine has {have}; use --devices all"
            + (f" or a number up to {available}" if available > 1 else "")
            + " or --devices cpu"
        )
    if wanted == 0:
        return Placement(("CPU",))
    if kind == "GPU" and wanted < available:
        with contextlib.suppress(RuntimeError):
            tf.config.set_visible_devices(gpus[:wanted], "GPU")
    names = [device.name for device in tf.config.list_logical_devices(kind)][:wanted]
    if wanted == 1:
        return Placement((_short(names[0]),))
    return Placement(tuple(_short(name) for name in names), tf.distribute.MirroredStrategy(names))
