"""A finished run written as a shipped model folder (tools.ship, lesionseg_tf.shipping)."""

import json
import os

import numpy as np
import pytest

from lesionseg_tf import inference, shipping
from lesionseg_tf import model as model_lib
from lesionseg_tf.run_dir import RunDir
from tests.conftest import run_script

pytestmark = pytest.mark.slow  # on the trained run


def test_a_run_ships_its_model_without_what_only_training_needs(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "shipped"
    result = run_script("-m tools.ship", f"--run_dir={run_dir}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"shipped {run_dir} as {out}: " in result.stdout
    written = {line.strip() for line in result.stdout.splitlines()[1:]}
    assert {
        "flags.json",
        "training_ids.txt",
        "holdout_ids.txt",
        "result.json",
        "training_log.csv",
        "lesionseg.keras",
        os.path.join("export", "saved_model.pb"),
    } <= written
    assert not [
        p for p in written if p.split(os.sep)[0] in ("best.keras", "backup", "logs", "cache")
    ]
    # No path of the machine that trained it: the data folder and the run by their names.
    for name in ("flags.json", "result.json"):
        assert os.path.dirname(run_dir) not in (out / name).read_text(), name
    flags = json.loads((out / "flags.json").read_text())
    assert flags["model_dir"] == os.path.basename(run_dir) and "/" not in flags["data_dir"]
    shipped = model_lib.load(str(out / "lesionseg.keras"))
    assert getattr(shipped, "optimizer", None) is None  # weights only
    best = model_lib.load(os.path.join(run_dir, "best.keras"))
    for a, b in zip(shipped.get_weights(), best.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    photograph = np.random.default_rng(3).integers(0, 256, (40, 60, 3)).astype(np.uint8)
    np.testing.assert_array_equal(
        inference.load_segmenter(str(out / "export")).segment(photograph),
        inference.load_segmenter(os.path.join(run_dir, "export")).segment(photograph),
    )
    assert RunDir(out).image_size() == RunDir(run_dir).image_size()
    with pytest.raises(ValueError, match="exists"):
        shipping.ship_run(run_dir, output_dir=str(out))
    with pytest.raises(ValueError, match="holds no finished run"):
        shipping.ship_run(str(tmp_path), output_dir=str(tmp_path / "other"))
    assert not os.path.exists(tmp_path / "other")
