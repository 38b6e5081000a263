"""Full-resolution prediction with an exported SavedModel (paper section 3.4)."""

import os

import tensorflow as tf

from lesionseg_tf import export, messages, postprocess, segment


class Segmenter:
    """Runs an export of `export.export_saved_model` on photographs of any size.

    The mask comes from the SavedModel's `segment` signature (or `segment_tta`):
    resizing, standardization, the network and section 3.4's post-processing all
    run in the exported graph, the one a TF Serving client calls. Only the
    options beyond the paper (`postprocess.refine`) run here, on its mask.
    """

    def __init__(self, export_dir):
        self.path = export_dir
        self.image_size = int(export.read_info(export_dir)["image_size"])
        try:
            self._module = tf.saved_model.load(export_dir)
            signatures = self._module.signatures
            self._segment = {
                False: signatures[export.SEGMENT_ENDPOINT],
                True: signatures.get(export.SEGMENT_TTA_ENDPOINT),
            }
        except (tf.errors.OpError, KeyError, ValueError, OSError) as e:
            raise ValueError(
                f"{export_dir}: cannot load the SavedModel ({messages.reason(e)})"
            ) from None

    def check_options(self, *, tta=False):
        """Raises ValueError, before any work, when the export lacks a requested option."""
        if tta and self._segment[True] is None:
            raise ValueError(
                f"{self.path} has no {export.SEGMENT_TTA_ENDPOINT} signature "
                "(exported by an older version); re-export it with "
                "python -m tools.export"
            )

    def segment(self, image, *, tta=False, **refinements):
        """`[H, W, 3]` uint8 RGB photograph -> `[H, W]` uint8 0/255 lesion mask;
        `refinements` are `postprocess.refine`'s options."""
        self.check_options(tta=tta)
        mask = self._segment[tta](image=tf.constant(image, tf.uint8))["mask"].numpy()
        return postprocess.refine(mask, **refinements)


class LiteSegmenter:
    """Runs a `.tflite` network (`tflite.convert`) on photographs of any size.

    Only the network runs in LiteRT; the resize, the standardization and section
    3.4 are `segment.segment_photograph`, the very function the SavedModel's
    signatures trace, run eagerly here. So a `.tflite` file is scored with the same
    code and metrics as a SavedModel, and an app developer has the reference for
    what to do around the network.
    """

    def __init__(self, path):
        from lesionseg_tf import tflite  # pylint: disable=import-outside-toplevel

        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such TFLite file")
        self.path = path
        self._network = tflite.LiteNetwork(path)
        self.image_size = self._network.image_size

    def check_options(self, *, tta=False):
        """Every option works on a `.tflite` network: nothing to refuse."""
        del tta

    def segment(self, image, *, tta=False, **refinements):
        """`[H, W, 3]` uint8 RGB photograph -> `[H, W]` uint8 0/255 lesion mask;
        `refinements` are `postprocess.refine`'s options."""
        mask = segment.segment_photograph(
            self._network, image=tf.constant(image, tf.uint8), image_size=self.image_size, tta=tta
        ).numpy()
        return postprocess.refine(mask, **refinements)


def load_segmenter(path):
    """A `LiteSegmenter` for a `.tflite` file, else a `Segmenter` for a SavedModel folder.

    Raises:
      ValueError: the model cannot be loaded (the message names it).
      FileNotFoundError: a folder that is not an export of this project.
    """
    if str(path).endswith(".tflite"):
        return LiteSegmenter(path)
    return Segmenter(path)
