"""Choosing a `tf.distribute` strategy, and which worker writes."""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

from lesionseg_tf.config import STRATEGIES


def make_strategy(name):
    """Creates the strategy `--strategy` names.

    auto: `MirroredStrategy` over all GPUs when more than one is visible, else
      TensorFlow's default strategy.
    one_device: the first GPU, or the CPU.
    mirrored: `MirroredStrategy` over all GPUs, or over all (logical) CPU devices
      when there is no GPU.
    multi_worker: `MultiWorkerMirroredStrategy`, configured by the `TF_CONFIG`
      environment variable.

    Must run before TensorFlow starts its runtime (no op may have run yet) for
    multi_worker.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy=multi_worker needs the TF_CONFIG environment variable "
                "(the cluster and this worker's task; see README)"
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON ({e})") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        if len(gpus) > 1:
            return tf.distribute.MirroredStrategy(gpus)
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else "/cpu:0")
    return tf.distribute.MirroredStrategy(
        gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    )


def is_chief(strategy):
    """True for the worker that writes checkpoints, logs and the export: the
    'chief' task if the cluster has one, else worker 0, else the only process."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and resolver.task_id == 0


def weights_digest(model):
    """SHA-256 of all the model's weights: equal digests mean bit-identical weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()
