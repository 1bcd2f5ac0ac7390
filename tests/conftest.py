"""Test-wide set-up: Keras 2 for TFRS and tensorflow-transform, before any
test module imports TensorFlow."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
