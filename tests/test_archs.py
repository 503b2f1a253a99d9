"""The classic architectures are exactly the tutorial's, with their recipes."""

from __future__ import annotations

import pytest

from mnistctl.archs import arch_names, get_arch
from mnistctl.errors import UsageError
from tests.conftest import run_cli


def test_classic_architectures_are_registered():
    assert arch_names()[:2] == ["mlp", "cnn"]


def test_mlp_is_the_classic_keras_mlp():
    model = get_arch("mlp").build()
    layers = [type(layer).__name__ for layer in model.layers]
    assert layers == ["Rescaling", "Reshape", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert [layer.units for layer in model.layers if hasattr(layer, "units")] == [512, 512, 10]
    assert {layer.rate for layer in model.layers if hasattr(layer, "rate")} == {0.2}
    assert model.count_params() == 669_706  # 784*512+512 + 512*512+512 + 512*10+10
    recipe = get_arch("mlp").recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size, recipe.epochs) == ("Adam", 0.001, 128, 4)


def test_cnn_is_the_classic_keras_cnn_with_keras2_adadelta():
    model = get_arch("cnn").build()
    layers = [type(layer).__name__ for layer in model.layers]
    assert layers == [
        "Rescaling",
        "Reshape",
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert [layer.rate for layer in model.layers if hasattr(layer, "rate")] == [0.25, 0.5]
    assert model.count_params() == 1_199_882
    recipe = get_arch("cnn").recipe
    assert (recipe.optimizer, recipe.learning_rate, recipe.optimizer_options) == ("Adadelta", 1.0, {"rho": 0.95})
    assert (recipe.batch_size, recipe.epochs) == (128, 12)


def test_unknown_arch_lists_the_choices():
    with pytest.raises(UsageError, match="mlp, cnn"):
        get_arch("resnet")


def test_cli_unknown_arch_is_a_usage_error():
    result = run_cli("train", "--arch", "resnet")
    assert result.returncode == 2
    stderr = result.stderr.decode()
    assert "resnet" in stderr and "mlp" in stderr and "cnn" in stderr
    assert "Traceback" not in stderr
