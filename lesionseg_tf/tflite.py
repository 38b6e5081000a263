"""The network as a TFLite model, for phones and dermatoscope apps (LiteRT).

Only Table 1's network is converted, at the model's training size, batch 1: its ops
(MirrorPad, dilated Conv2D, DepthToSpace, batch norm folded into the convolutions)
are TFLite built-ins. The resize, the standardization and section 3.4 stay outside,
in the app; `segment.segment_photograph` is the reference for them, and
`inference.LiteSegmenter` runs a `.tflite` file inside exactly that code.

    python -m tools.export --run_dir=pretrained/lesionseg_isic2017 --tflite=int8 \\
        --calibration_dir=ISIC2017
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from lesionseg_tf import export, files
from lesionseg_tf.config import TFLITE_VARIANTS

EXTENSION = ".tflite"


def convert(model, *, image_size, variant, calibration_images=None):
    """The network as TFLite flatbuffer bytes.

    Args:
      model: the Keras Table-1 model.
      image_size: the side it was trained at; the input is `[1, size, size, 3]` float32
        (standardized), the output `[1, size, size, 2]` float32 logits, in every variant.
      variant: "float32"; "float16" (weights stored in half precision, computed in
        float32 where the device has no float16: half the size); or "int8": full
        integer quantization, weights and activations, calibrated on
        `calibration_images` (the activations' ranges must come from real
        photographs; dynamic-range quantization would leave the convolutions' inputs
        in float and gain no integer speed on a phone's NPU or DSP). Its input and
        output stay float32, quantized inside, so an app feeds the same tensors.
      calibration_images: for "int8", `[n, size, size, 3]` float32 standardized
        images (a few hundred training photographs).

    Raises:
      ValueError: an unknown variant, or "int8" without calibration images.
    """
    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(TFLITE_VARIANTS)}, got {variant!r}")
    if variant == "int8" and (calibration_images is None or not len(calibration_images)):
        raise ValueError("int8 needs calibration images (standardized training photographs)")
    # Through a SavedModel of the network alone, the converter's surest path: it
    # freezes the variables into constants (from a concrete function of the Keras
    # model they stay resource variables, which LiteRT reads uninitialized).
    module = export.network_module(model)
    module.network = tf.function(
        lambda images: {"logits": model(images, training=False)},
        input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="images")],
    )
    with tempfile.TemporaryDirectory(prefix="lesionseg-tflite-") as folder:
        tf.saved_model.save(module, folder, signatures={"serving_default": module.network})
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        return _convert(converter, variant, calibration_images)


def _convert(converter, variant, calibration_images):
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [np.asarray(image, np.float32)[np.newaxis]] for image in calibration_images
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


class LiteNetwork:
    """A converted network run by LiteRT's interpreter (`ai_edge_litert`):
    `[batch, s, s, 3]` float32 -> `[batch, s, s, 2]` float32 logits, one image at a time."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel

        try:
            self._interpreter = Interpreter(model_path=path)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{path}: cannot load the TFLite model ({e})") from None
        (self._input,) = self._interpreter.get_input_details()
        (self._output,) = self._interpreter.get_output_details()
        shape = tuple(int(v) for v in self._input["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2] or shape[3] != 3:
            raise ValueError(
                f"{path}: input shape {shape} is not [1, s, s, 3]: not a LesionSeg network"
            )
        self.path = path
        self.image_size = shape[1]

    def __call__(self, images):
        images = np.asarray(images, np.float32)
        outputs = []
        for image in images:
            self._interpreter.set_tensor(self._input["index"], image[np.newaxis])
            self._interpreter.invoke()
            outputs.append(self._interpreter.get_tensor(self._output["index"])[0])
        return tf.constant(np.stack(outputs))


def write(model, *, path, image_size, variant, calibration_images=None):
    """`convert`s the network and writes it to `path` in one rename (its folder made
    where missing): the bytes' length."""
    data = convert(
        model, image_size=image_size, variant=variant, calibration_images=calibration_images
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    files.write_atomically(path, payload=data)
    return len(data)
