"""Planning and running predict.py's work: which files, which outputs, what failed.

The plan needs no TensorFlow, so that predict.py refuses a bad request before it loads;
running the jobs imports `images` (TensorFlow's decoders) when it starts."""

import dataclasses
import os
import re

from lesionseg_tf import config, datasets, files, layouts, messages

IMAGE_EXTENSIONS = layouts.PHOTO_EXTENSIONS
_NOT_PHOTOGRAPHS = re.compile(r"_(superpixels|segmentation|overlay)\.png$", re.IGNORECASE)
# Overlays go to a subfolder so that the output folder itself stays a valid ISIC
# submission (the scorer matches every file whose name holds the image number).
OVERLAY_FOLDER = "overlays"


@dataclasses.dataclass(frozen=True)
class Job:
    image_path: str
    mask_path: str  # where the predicted mask goes
    overlay_path: str
    truth_path: str | None


def _list_images(folder):
    return [
        os.path.join(folder, n)
        for n in sorted(os.listdir(folder))
        if n.lower().endswith(IMAGE_EXTENSIONS)
        and not _NOT_PHOTOGRAPHS.search(n)
        and not n.startswith(".")
    ]


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _truth_for(stem, truth_dir):
    """A ground-truth mask in a folder given by hand: the ISIC names, or the stem's."""
    for name in (
        f"{stem}_segmentation.png",
        f"{stem}_Segmentation.png",
        f"{stem}.png",
        f"{stem}.bmp",
    ):
        path = os.path.join(truth_dir, name)
        if os.path.isfile(path):
            return path
    return None


def plan(input_path, *, output_dir, truth_dir=None, allow_writing_into_sources=False):
    """Lists what predict.py will do, refusing bad requests before any work.

    A folder is a dataset's top folder or one of its image folders (any layout
    of `datasets`: the photographs of PH2's nested folders, the ground truth
    found beside them), or else a plain folder of photographs. Each photograph's
    mask is written as `<stem>_segmentation.png`.

    Returns:
      `(jobs, one line saying what was found)`.

    Raises:
      ValueError / FileNotFoundError: no such input, no images, two inputs that
        would write the same mask, or an output folder that is a source folder.
    """
    where = input_path
    if os.path.isdir(input_path):
        layout = datasets.photographs_in(input_path)
        if layout is not None:
            where, found = f"{layout[0]} ({input_path})", layout[1]
        else:
            found = [(_stem(path), path, None) for path in _list_images(input_path)]
        if not found:
            raise ValueError(f"{input_path}: no images ({', '.join(IMAGE_EXTENSIONS)}) found")
        sources = [input_path]
    elif os.path.isfile(input_path):
        found = [(_stem(input_path), input_path, None)]
        sources = [os.path.dirname(os.path.abspath(input_path))]
    else:
        raise FileNotFoundError(f"{input_path}: no such file or folder")
    if truth_dir:
        if not os.path.isdir(truth_dir):
            raise FileNotFoundError(f"ground-truth folder {truth_dir} does not exist")
        found = [(stem, path, _truth_for(stem, truth_dir)) for stem, path, _ in found]
        sources.append(truth_dir)
    sources += sorted({os.path.dirname(truth) for _, _, truth in found if truth})
    if not allow_writing_into_sources:
        for source in sources:
            if os.path.realpath(source) == os.path.realpath(output_dir):
                raise ValueError(
                    f"--output_dir {output_dir} is the source folder {source}; "
                    "choose another (or pass --allow_writing_into_sources)"
                )
    jobs, claimed = [], {}
    for stem, image_path, truth_path in found:
        if stem in claimed:
            raise ValueError(
                f"{image_path} and {claimed[stem]} would both write {stem}_segmentation.png"
            )
        claimed[stem] = image_path
        jobs.append(
            Job(
                image_path=image_path,
                mask_path=os.path.join(output_dir, f"{stem}_segmentation.png"),
                overlay_path=os.path.join(output_dir, OVERLAY_FOLDER, f"{stem}_overlay.jpg"),
                truth_path=truth_path,
            )
        )
    known = sum(job.truth_path is not None for job in jobs)
    return jobs, f"{where}: {len(jobs)} photograph(s), {known} with ground truth"


def run(
    jobs,
    *,
    segmenter,
    on_error,
    overlay=False,
    max_pixels=config.DEFAULT_MAX_PIXELS,
    progress=None,
    **options,
):
    """Predicts every job's mask (and overlay).

    A job that fails (unreadable image, unreadable truth) is reported through
    `on_error` as one line naming the file; the others still run.

    `progress.update(done)` is called after each job when `progress` is given
    (`console.make_progress`).

    Returns:
      The image paths that failed.
    """

    from lesionseg_tf import images  # pylint: disable=import-outside-toplevel

    if overlay:  # matplotlib comes with the figures module: imported only when drawn
        from lesionseg_tf import figures  # pylint: disable=import-outside-toplevel

    def predict(job):
        image = images.read_image_file(job.image_path, max_pixels=max_pixels)
        mask = segmenter.segment(image, **options)
        os.makedirs(os.path.dirname(os.path.abspath(job.mask_path)), exist_ok=True)
        files.write_atomically(job.mask_path, payload=images.encode_png(mask))
        if overlay:
            os.makedirs(os.path.dirname(job.overlay_path), exist_ok=True)
            truth = images.read_mask_file(job.truth_path) if job.truth_path else None
            picture = figures.overlay(image, predicted=mask, truth=truth)
            jpeg = images.encode_jpeg(picture, quality=90, name=job.overlay_path)
            files.write_atomically(job.overlay_path, payload=jpeg)

    failed = messages.each_item(jobs, predict, on_error=on_error, progress=progress)
    return [job.image_path for job in failed]


def result_line(*, jobs, failures, output_dir, seconds):
    """What predict.py prints at the end of `run`."""
    return (
        f"wrote {len(jobs) - len(failures)} of {len(jobs)} masks to {output_dir} in "
        f"{seconds:.1f} s ({seconds / max(1, len(jobs)):.2f} s per image)"
    )
