"""Re-exports a run folder's model (its best.keras, or a shipped model's weights) as
a SavedModel with this version's serving graph, replacing <run_dir>/export.

    python -m tools.export --run_dir=pretrained/lesionseg_isic2017
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

import numpy as np
from absl import app, logging

import common_flags
import console

_RUN_DIR = common_flags.define_run_dir(
    "A train.py run folder (best.keras) or a shipped model folder (lesionseg.weights.h5); its "
    "export/ is replaced.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not _RUN_DIR.value:
        raise app.UsageError("--run_dir is required: a train.py run folder or a shipped model")
    for line in console.import_tensorflow()[0]:
        print(line, file=sys.stderr)
    import tensorflow as tf

    from lesionseg_tf import export
    from lesionseg_tf.run_dir import RunDir

    logging.set_verbosity(logging.WARNING)  # TensorFlow's notes on each traced function
    tf.get_logger().setLevel("WARNING")
    run = RunDir(_RUN_DIR.value)
    try:
        model, image_size = export.load_run_model(run.path)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"export: {e}")
    export_dir = export.export_saved_model(model, run.export_dir, image_size=image_size)
    images = np.random.default_rng(0).normal(size=(2, image_size, image_size, 3))
    difference = export.check_export(export_dir, model, images.astype(np.float32))
    print(f"exported {export_dir} (image_size {image_size}; max |logit difference| "
          f"{difference:.2g})")


if __name__ == "__main__":
    app.run(main)
