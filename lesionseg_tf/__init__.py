"""LesionSeg (Ramachandram & DeVries, 2017, arXiv:1703.03372) in TensorFlow 2 / Keras 3.

Importing the package loads nothing: `lesionseg_tf.config`, `datasets`, `run_dir` and
`files` import no TensorFlow, so the commands answer `--help` and refuse bad flags in
a second. `lesionseg_tf.model` registers the network's Keras classes for loading
(`model.load`).
"""
