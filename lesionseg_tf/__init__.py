"""LesionSeg (Ramachandram & DeVries, 2017, arXiv:1703.03372) in TensorFlow 2 / Keras 3."""

# Importing the modules registers the custom layers and model for safe loading.
from lesionseg_tf import layers, metrics, model  # noqa: F401
