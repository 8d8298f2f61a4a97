"""The application layer: the ``compare`` job wired end to end, the model-RDM cache, dask, reports, the CLI.

Layers, lowest first (each imports only from those below it; checked by import-linter in CI, see
``[tool.importlinter]`` in ``pyproject.toml``):

1. :mod:`stimuli` — images and manifests;
2. :mod:`rsa_bridge` core — RDMs, comparison, statistics, neural data, datasets, errors, provenance;
3. :mod:`extractors` — PyTorch models, hooks, streaming Gram accumulation;
4. :mod:`rsa_bridge.app` (this package) — orchestration (:mod:`~rsa_bridge.app.pipeline`), the cache
   (:mod:`~rsa_bridge.app.cache`), dask (:mod:`~rsa_bridge.app.distributed`), reports
   (:mod:`~rsa_bridge.app.report`) and the command line (:mod:`~rsa_bridge.app.cli`);
5. :mod:`analyses` — depth masks, missed detections, unit attributes, figure scripts; their sub-commands
   are registered through the entry-point group ``rsa_bridge.commands``.

The old import paths (``rsa_bridge.pipeline``, ``rsa_bridge.cache``, ...) were removed in issue 24 (see
CHANGELOG.md): import these modules from ``rsa_bridge.app``.
"""
