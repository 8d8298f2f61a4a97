"""``rsa-bridge compare --between-models``: the command-line side of :mod:`rsa_bridge.app.between`.

Parses what ``compare`` registered (``--model`` once or twice, ``--weights`` once or once per model,
``--measure`` once, ``--method``, ``--dataset`` / ``--stimuli``, ``--layers`` once or once per model,
the measure settings), prints
the map and writes ``model_map.nc`` / ``model_map.csv``; no science here.
"""
from __future__ import annotations

import argparse

#: options of ``compare`` that a model map does not read (brain data, statistics, stores): refused when given
_NOT_READ = {"area": "--area", "model_rdms": "--model-rdms", "responses": "--responses",
             "scheduler": "--scheduler", "normalize_by_ceiling": "--normalize-by-ceiling",
             "stimulus_ids": "--stimulus-ids"}


def one_weights(weights) -> str:
    """``--weights`` of a compare job (one value for every model): 'default' when not given."""
    from rsa_bridge.errors import RSABridgeError

    if not weights:
        return "default"
    if len(weights) > 1:
        raise RSABridgeError(f"--weights is given {len(weights)} times; give it once (one value for every model), "
                             "or once per --model with --between-models")
    return weights[0]


def run_between(args: argparse.Namespace) -> int:
    from rsa_bridge.app.between import between_models, format_map, write_model_map
    from rsa_bridge.app.network import NetworkOptions
    from rsa_bridge.errors import RSABridgeError
    from rsa_bridge.measures.scoring import MeasureOptions
    from rsa_bridge.options import RDMOptions

    given = [flag for key, flag in _NOT_READ.items() if getattr(args, key, None)]
    if given:
        raise RSABridgeError(f"--between-models compares two networks and reads no brain data: drop {given[0]}")
    models = args.model or []
    if not 1 <= len(models) <= 2:
        raise RSABridgeError("--between-models needs --model A --model B (or one --model to map it with itself)")
    weights = args.weights or ["default"]
    if len(weights) not in (1, len(models)):
        raise RSABridgeError(f"--weights is given {len(weights)} times for {len(models)} --model; give it once "
                             "(both) or once per --model, in the same order")
    measures = list(dict.fromkeys(args.measure or ["cka"]))
    if len(measures) != 1:
        raise RSABridgeError(f"--between-models draws one measure per map; got --measure {', '.join(measures)}: "
                             "run once per measure")
    if args.out is not None:
        from rsa_bridge.io import check_out

        check_out(args.out, args.overwrite)
    from rsa_bridge.app.commands.compare import layer_lists

    layers = layer_lists(args.layers, len(models))
    if [] in layers:
        raise RSABridgeError("--layers is empty; name layers, e.g. --layers conv1,fc6, or leave the option out "
                             "for the model's default layers")
    tokens = args.tokens if args.tokens != "all" else None
    networks = [NetworkOptions(weights=w, layers=l, stimuli=args.stimuli, tokens=tokens)
                for w, l in zip(weights * len(models) if len(weights) == 1 else weights, layers)]
    options = MeasureOptions(shape_alpha=args.shape_alpha, knn_k=args.knn_k)
    rdm = RDMOptions(metric=args.metric, precision=args.precision, batch_size=args.batch_size, device=args.device,
                     reduce_units=args.reduce_units, reduce_seed=args.seed)
    result = between_models(models, networks, measure=measures[0], method=args.method, dataset=args.dataset,
                            rdm=rdm, measure_options=options, progress=False if args.quiet else None)
    print(format_map(result))
    if args.out is not None:
        written = write_model_map(result, args.out, overwrite=args.overwrite)
        print(f"wrote {', '.join(p.name for p in written)} to {args.out}")
    return 0
