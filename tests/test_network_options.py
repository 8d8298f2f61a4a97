"""NetworkOptions: compare_model(s) take the network's options as one object; the old keywords still work."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from rsa_bridge.app.network import NetworkOptions, network_from_keywords
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.options import StatsOptions


def test_network_options_are_checked_and_frozen():
    import dataclasses

    net = NetworkOptions(weights="none", layers=["conv1", "fc8"], models=[object()])
    assert net.layers == ("conv1", "fc8") and isinstance(net.models, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.weights = "default"
    for bad in ({"layers": []}, {"layers": "conv1"}, {"weights": 3}, {"tokens": 1}, {"stimuli": 5}):
        with pytest.raises(RSABridgeError) as err:
            NetworkOptions(**bad)
        assert "\n" not in str(err.value)


def test_old_keywords_fold_into_network_options_with_one_warning():
    module = object()
    with pytest.warns(DeprecationWarning, match="network=rsa_bridge.NetworkOptions"):
        net = network_from_keywords(None, {"weights": "none", "model": module, "cache": False}, "compare_model")
    assert net == NetworkOptions(weights="none", models=[module], cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert network_from_keywords(net, {}, "compare_model") is net
    with pytest.raises(TypeError, match="'colour'"):
        network_from_keywords(None, {"colour": 1}, "compare_model")


def test_compare_model_with_network_options_equals_the_old_keywords():
    from rsa_bridge.app.pipeline import compare_model

    stats = StatsOptions(ceiling=False)
    new = compare_model("pixels", ["IT"], network=NetworkOptions(cache=False), stats=stats, progress=False)
    with pytest.warns(DeprecationWarning, match=r"compare_model\(cache=\)"):
        old = compare_model("pixels", ["IT"], cache=False, stats=stats, progress=False)
    np.testing.assert_array_equal(new.table["similarity"].to_numpy(), old.table["similarity"].to_numpy())


def test_compare_models_takes_at_most_ten_parameters():
    import inspect

    from rsa_bridge.app.pipeline import compare_model, compare_models
    from rsa_bridge.stats.summary import compare_statistics

    for fn in (compare_model, compare_models, compare_statistics):
        named = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
        assert len(named) <= 10, fn.__name__
