# The image every step of the pipeline runs in on Vertex AI Pipelines and
# Kubeflow Pipelines, and that Vertex AI Training jobs and Dataflow workers
# run too. Build, push and use it: docs/kubeflow_vertex.md.
#
#   docker build -t IMAGE_URI .   (from the repository root)
#
# The TFX image of the pinned TFX release: Python 3.10, TFX's container
# entrypoints, and Beam's worker boot as ENTRYPOINT (so Dataflow takes it as
# a custom SDK container). Keep the tag equal to tfx in requirements.lock.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

# Beam's worker boot of the Beam release pinned in requirements.lock (the
# base image's is from whatever Beam it was built with). Keep equal to
# apache-beam in requirements.lock.
COPY --from=apache/beam_python3.10_sdk:2.61.0 /opt/apache/beam /opt/apache/beam

# TFRS and tensorflow-transform need Keras 2, in every process.
ENV TF_USE_LEGACY_KERAS=1

# The project's place in the image; pipeline/kubeflow.py's
# CONTAINER_PROJECT_DIR (ImportSchemaGen reads the schema here).
WORKDIR /movielens-tfx

# The pinned environment first, so this layer is rebuilt only when the lock
# changes. The base image brings its own TensorFlow and TFX family; the lock
# pins the exact versions the project is tested with.
COPY requirements.lock .
RUN python -m pip install --no-cache-dir -r requirements.lock

# Then the project, installed as a package: the pipeline refers to module
# code by import path (modules.preprocessing.preprocessing_fn, ...).
COPY . .
# The check runs outside the source folder, so it imports the installed copy.
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
    && cd / && python -c "import pipeline.pipeline, modules.retrieval_trainer"
