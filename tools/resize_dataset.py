"""Makes the reduced copy of ISIC 2017 Task 1 that the reproduction study trains on:
every photograph and mask of the official archives squashed to a square (the paper's
own squash, at 448), in the same folder layout.

    python -m tools.resize_dataset --data_dir=ISIC2017 --output_dir=isic2017_256

Photographs are resized by area averaging and written as JPEG; masks by area averaging
and thresholding at > 127, written as 0/255 PNG (`images.write_resized_pair`). The
study's copy (docs/reproduction.md) was made the same way for the masks; its
photographs came from a public 256x256 copy whose filter is not documented, so a copy
made here may differ from it by a few grey levels.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out

from absl import app, flags

import common_flags
import console

_DATA_DIR, _DATASET = common_flags.define_dataset_flags()
_OUTPUT_DIR = common_flags.define_output_dir(None, "Where the copy goes (created).")
_SIZE = flags.DEFINE_integer("size", 256, "Side of the square copies.")
_MAX_IMAGE_PIXELS = common_flags.define_max_image_pixels()
flags.mark_flag_as_required("output_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _SIZE.value < 4:
        raise app.UsageError(f"--size must be >= 4, got {_SIZE.value}")
    console.require_inputs("resize_dataset", [("--data_dir", _DATA_DIR.value, "folder")])
    console.start_tensorflow()
    from lesionseg_tf import datasets, images

    try:
        dataset = datasets.open_dataset(_DATA_DIR.value, dataset=_DATASET.value)
        if dataset.layout.name not in ("isic2016", "isic2017", "isic2018"):
            raise datasets.DatasetError(
                f"{_DATA_DIR.value}: {dataset.layout.title}; this command copies an ISIC layout"
            )
        print(dataset.summary(), flush=True)
        for split in dataset.splits:
            examples = dataset.find(split)
            image_folder, mask_folder = dataset.layout.folders[split]
            for folder in (image_folder, mask_folder):
                os.makedirs(os.path.join(_OUTPUT_DIR.value, folder), exist_ok=True)
            progress = console.make_progress(len(examples))
            for done, example in enumerate(examples, 1):
                images.write_resized_pair(
                    example,
                    size=_SIZE.value,
                    max_pixels=_MAX_IMAGE_PIXELS.value,
                    image_path=os.path.join(
                        _OUTPUT_DIR.value, image_folder, example.image_id + ".jpg"
                    ),
                    mask_path=os.path.join(
                        _OUTPUT_DIR.value, mask_folder, os.path.basename(example.mask_path)
                    ),
                )
                progress.update(done)
            print(f"{split}: {len(examples)} pairs at {_SIZE.value}x{_SIZE.value}", flush=True)
    except (ValueError, OSError) as e:
        sys.exit(f"resize_dataset: {e}")
    print(f"written: {_OUTPUT_DIR.value}")


if __name__ == "__main__":
    console.run(main)
