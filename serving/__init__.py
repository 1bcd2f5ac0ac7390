"""Serving the pushed models through TF Serving's gRPC API.

- `serving.client`: a Python client (`ServingClient`) and its command line,
  `python -m serving.client`, for TF Serving or the local server;
- `serving.server`: a local gRPC server with TF Serving's own services, for
  development and tests where `tensorflow_model_server` cannot run;
- `serving.servables`: loading a SavedModel version and answering its
  requests, as the local server does and the pusher checks before a push;
- `serving.warmup`: the warm-up requests TF Serving replays when it loads a
  version (written by the pusher into `assets.extra/`).

Imports go one way: server -> servables -> warmup; the client imports none
of them. Deployment files for real TF Serving (`models.config`,
`kubernetes.yaml`) and their instructions are in `serving/README.md`.
Nothing is imported here, so that `python -m serving.client` and
`python -m serving.server` start without importing anything twice.
"""
