"""Crystal GNN ensemble: graphs, model, training, evaluation, baselines and model bundles.

Entry points other areas use:

* ``bundle.load_bundle_file(path)`` / ``bundle.ensemble_from_bundle(bytes)`` -> ``Ensemble``
  (safe loading; raises ``bundle.BundleError``), ``bundle.ensemble_to_bundle(ensemble,
  training_data_cids, metadata)`` -> deterministic bytes, ``bundle.read_manifest(bytes)``.
* ``Ensemble.predict(crystals)`` -> ``Prediction`` (``mean``, ``std``, ``std_raw``,
  ``members``, ``targets``; ``.rows(names)``), ``Ensemble.units()``, ``Ensemble.compile()``.
* ``graph.crystal_to_graph(crystal, GraphConfig)`` -> PyG ``Data``;
  ``graph.batch_neighbor_list(...)`` for raw arrays.
* ``train.train_model(...)``, ``ensemble.train_ensemble(...)``, ``workflow.fit(...)``.

See docs/ml.md.
"""
