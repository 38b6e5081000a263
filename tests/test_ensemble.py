"""An ensemble of trained networks as one network (`model.build_ensemble`): its
output's softmax is the members' mean probability, and it exports and converts as a
single network does."""

import dataclasses
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from lesionseg_tf import export, inference, segment, shipping, tflite, training
from lesionseg_tf import model as model_lib
from lesionseg_tf.config import RunConfig
from lesionseg_tf.run_dir import RunDir
from tests.conftest import run_script


@pytest.fixture(scope="module")
def members():
    networks = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        networks.append(model_lib.build_model())
    return networks


def images(seed=0):
    rng = np.random.default_rng(seed)
    return tf.image.per_image_standardization(
        rng.integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    ).numpy()


def test_the_softmax_of_the_output_is_the_members_mean_probability(members):
    ensemble = model_lib.build_ensemble(members)
    batch = images()
    expected = np.mean([tf.nn.softmax(m(batch, training=False)).numpy() for m in members], 0)
    got = tf.nn.softmax(ensemble(batch, training=False)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert model_lib.networks_of(ensemble)[1].name == "member_1"
    assert model_lib.networks_of(members[0]) == [members[0]]


def test_an_ensemble_exports_saves_and_converts_as_one_network(members, tmp_path):
    ensemble = model_lib.build_ensemble(members)
    export_dir = export.export_saved_model(ensemble, export_dir=str(tmp_path / "e"), image_size=32)
    assert export.read_info(export_dir)["members"] == 2
    assert export.read_info(export_dir)["context"] == "none"
    export.check_export(export_dir, model=ensemble, inputs=images(1))
    photograph = np.random.default_rng(2).integers(0, 256, (45, 70, 3)).astype(np.uint8)
    expected = segment.segment_photograph(
        lambda x: ensemble(x, training=False), image=tf.constant(photograph), image_size=32
    ).numpy()
    np.testing.assert_array_equal(
        inference.load_segmenter(export_dir).segment(photograph), expected
    )
    path = str(tmp_path / "ensemble.keras")
    ensemble.save(path)
    again = model_lib.load(path)
    np.testing.assert_allclose(again(images(3)), ensemble(images(3)), atol=1e-6)
    flat = tmp_path / "ensemble.tflite"
    flat.write_bytes(tflite.convert(ensemble, image_size=32, variant="float32"))
    lite = inference.LiteSegmenter(str(flat)).segment(photograph)
    assert (lite == expected).mean() >= 0.999
    assert os.path.getsize(flat) > 2 * 4 * 2_000_000 * 0.9  # both members' weights


def test_an_ensemble_of_one_or_of_unlike_networks_is_refused(members):
    with pytest.raises(ValueError, match="at least two"):
        model_lib.build_ensemble(members[:1])
    with pytest.raises(ValueError, match="must be alike"):
        model_lib.build_ensemble([members[0], model_lib.build_model(context="image_pooling")])


@pytest.mark.slow
def test_the_command_writes_an_ensemble_of_runs(trained_run, tmp_path):
    """An ensemble of a run with itself is that run: the same masks, the same ids."""
    run_dir, _ = trained_run
    out = tmp_path / "ensemble"
    result = run_script("-m tools.ensemble", f"--runs={run_dir},{run_dir}", f"--output_dir={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"SavedModel of 2 networks: {out / 'export'}" in result.stdout
    photograph = np.random.default_rng(4).integers(0, 256, (60, 90, 3)).astype(np.uint8)
    single = inference.load_segmenter(os.path.join(run_dir, "export")).segment(photograph)
    both = inference.load_segmenter(str(out / "export")).segment(photograph)
    np.testing.assert_array_equal(both, single)
    for name in ("training_ids.txt", "holdout_ids.txt"):
        with open(os.path.join(run_dir, name)) as f, open(out / name) as g:
            assert sorted(f.read().split()) == g.read().split()
    one = run_script("-m tools.ensemble", f"--runs={run_dir}", f"--output_dir={out}2")
    assert one.returncode != 0 and "two or more" in one.stderr
    # No flags.json in an ensemble of runs: its input size is its export's, so that
    # tools.export (a .tflite) and fine-tuning's checks can load it as any model folder.
    assert not os.path.exists(out / RunDir.CONFIG)
    model, image_size = model_lib.load_run(str(out))
    assert image_size == RunDir(run_dir).image_size() == 32
    assert len(model.inputs) == 1
    with pytest.raises(FileNotFoundError, match="flags.json"):
        RunDir(tmp_path).image_size()


@pytest.mark.slow
def test_members_train_one_after_another_and_export_their_ensemble(training_only_isic, tmp_path):
    """`--members=2`: two whole runs (seeds 5 and 6, one held-out draw), then their
    ensemble as the run's model; run again after a kill, the finished networks are kept."""
    config = RunConfig(
        data_dir=training_only_isic,
        image_size=32,
        batch_size=4,
        max_epochs=1,
        seed=5,
        holdout_seed=7,
        members=2,
    )
    lines = []
    model_dir = tmp_path / "ensemble"

    def train(settings=config):
        return training.run(
            settings, model_dir=str(model_dir), verbose=0, report=lambda line, _: lines.append(line)
        )

    result = train()
    top, first, second = RunDir(model_dir), RunDir(model_dir).member(0), RunDir(model_dir).member(1)
    assert top.read_json(RunDir.CONFIG)["members"] == 2
    for member, seed in ((first, 5), (second, 6)):
        recorded = member.read_json(RunDir.CONFIG)
        assert (recorded["seed"], recorded["holdout_seed"], recorded["members"]) == (seed, 7, 1)
        assert member.read_ids(RunDir.HOLDOUT_IDS) == top.read_ids(RunDir.HOLDOUT_IDS)
    digests = [member["weights_sha256"] for member in result["members"]]
    assert digests[0] != digests[1]  # two seeds, two networks
    networks = [model_lib.load(member.best_path) for member in (first, second)]
    both = model_lib.build_ensemble(networks)
    photograph = np.random.default_rng(5).integers(0, 256, (50, 75, 3)).astype(np.uint8)
    expected = segment.segment_photograph(
        lambda x: both(x, training=False), image=tf.constant(photograph), image_size=32
    ).numpy()
    np.testing.assert_array_equal(
        inference.load_segmenter(top.export_dir).segment(photograph), expected
    )
    assert top.read_json(RunDir.RESULT)["weights_sha256"] == result["weights_sha256"]
    with pytest.raises(ValueError, match="holds a finished run"):
        train()

    # Killed after both networks, before the ensemble was written: they are taken as
    # they are (a network's own interrupted run continues as test_resume.py shows).
    for path in (top.file(RunDir.RESULT), top.export_dir):
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    with pytest.raises(ValueError, match="seed: 5 then, 9 now"):
        train(dataclasses.replace(config, seed=9))
    first_model = open(first.best_path, "rb").read()
    lines.clear()
    again = train()
    assert "network 1 of 2 (--seed=5): trained before, in " + first.path in lines
    assert "network 2 of 2 (--seed=6): trained before, in " + second.path in lines
    assert open(first.best_path, "rb").read() == first_model
    assert again["members"] == result["members"]
    assert again["weights_sha256"] == result["weights_sha256"]
    assert os.path.isdir(top.export_dir) and top.is_finished()
    # Shipped: each network's flags, result and log; the ensemble for Keras, no optimizer.
    written = shipping.ship_run(top.path, output_dir=str(tmp_path / "shipped"))
    for k in (0, 1):
        for name in ("flags.json", "result.json", "training_log.csv"):
            assert os.path.join(f"member_{k}", name) in written
    assert not [p for p in written if p.endswith("best.keras")]
    shipped = model_lib.load(str(tmp_path / "shipped" / "lesionseg.keras"))
    assert getattr(shipped, "optimizer", None) is None
    assert len(model_lib.networks_of(shipped)) == 2

    # Finished runs copied in as networks (how the study made ensembles of runs it had
    # trained one by one): taken when each records its network's settings, refused else.
    model_dir = tmp_path / "assembled"
    for index, source in enumerate((first, second)):
        shutil.copytree(source.path, RunDir(model_dir).member(index).path)
    lines.clear()
    assert train()["weights_sha256"] == result["weights_sha256"]
    assert (
        "network 1 of 2 (--seed=5): trained before, in "
        + first.path.replace("ensemble", "assembled")
        in lines
    )
    model_dir = tmp_path / "swapped"
    for index, source in enumerate((second, first)):
        shutil.copytree(source.path, RunDir(model_dir).member(index).path)
    with pytest.raises(
        ValueError,
        match=r"member_0 holds a finished network trained otherwise .*: seed: 6 then, 5 now",
    ):
        train()
