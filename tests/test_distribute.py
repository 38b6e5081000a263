"""tf.distribute: two workers on localhost, and MirroredStrategy on CPU devices."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, script_env


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def spawn_workers(args, count=2, quiet=False):
    """Starts `count` processes `python ARGS...` as one TF_CONFIG cluster."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return [
        subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            stdout=output,
            stderr=output,
            text=True,
            env=script_env(
                TF_CONFIG=json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            ),
        )
        for index in range(count)
    ]


def start_workers(args, count=2):
    """Runs the cluster to the end: `[(returncode, stdout, stderr)]` per worker."""
    results = []
    for process in spawn_workers(args, count):
        stdout, stderr = process.communicate(timeout=600)
        results.append((process.returncode, stdout, stderr))
    return results


def digest_line(stdout):
    return [line for line in stdout.splitlines() if line.startswith("final weights sha256:")][0]


@pytest.mark.slow
def test_two_workers_resume_after_both_are_killed_and_only_the_chief_writes(tiny_isic, tmp_path):
    model_dir = tmp_path / "run"
    args = [
        "train.py",
        "--strategy=multi_worker",
        f"--data_dir={tiny_isic}",
        f"--model_dir={model_dir}",
        "--image_size=32",
        "--batch_size=4",
        "--max_epochs=3",
        "--patience=3",
        # 4 selection pairs to share between the 2 workers (a held-out tenth of 8 is
        # 1 pair, which leaves one worker none).
        "--select_on=validation",
    ]
    processes = spawn_workers(args, quiet=True)
    backup_meta = model_dir / "backup" / "state.json"
    deadline = time.time() + 300
    while not backup_meta.exists() and time.time() < deadline:
        assert all(p.poll() is None for p in processes), "a worker ended before the kill"
        time.sleep(0.02)
    time.sleep(0.3)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with open(backup_meta) as f:
        resumed_at = json.load(f)["epoch"]
    assert 1 <= resumed_at < 3

    results = start_workers(args)
    for returncode, stdout, stderr in results:
        assert returncode == 0, stderr[-3000:]
        assert "resuming the interrupted run" in stdout
    (_, chief_out, chief_err), (_, worker_out, worker_err) = results
    assert digest_line(chief_out) == digest_line(worker_out)  # bit-identical weights
    assert "global batch 4 = 2 replica(s) x 2" in chief_out
    # All 8 training pairs train; the 4 validation pairs select.
    assert "8 training pairs; the 4 validation pairs choose the epoch" in chief_out
    assert "validation per-image mean Jaccard:" in chief_out and "of 3);" in chief_out
    assert "not the chief" in worker_out
    with open(model_dir / "training_log.csv") as f:
        epochs = [line.split(",")[0] for line in f.readlines()[1:]]
    assert epochs == ["1", "2", "3"]  # each epoch once, counted from 1
    assert not (model_dir / "backup").exists()
    assert not (model_dir / "holdout_ids.txt").exists()
    loaded = tf.saved_model.load(str(model_dir / "export"))
    mask = loaded.signatures["serving_default"](image=tf.zeros([40, 52, 3], tf.uint8))["mask"]
    assert mask.shape == (40, 52)
    with open(model_dir / "result.json") as f:
        assert json.load(f)["epochs_run"] == 3
    worker_dirs = set(re.findall(r"(/\S*?lesionseg-worker-[^/\s]+)", worker_out))
    assert worker_dirs  # the worker wrote to a folder of its own...
    assert not any(os.path.exists(d) for d in worker_dirs)  # ...and removed it
    assert not [n for n in os.listdir(model_dir) if n.startswith("lesionseg-worker-")]


SHARD_SCRIPT = """
import json, sys
from lesionseg_tf import datasets, distribute, pipeline
strategy = distribute.make_strategy("multi_worker")
import tensorflow as tf
examples = datasets.find_split(sys.argv[1], split="training")
epoch = tf.Variable(0, dtype=tf.int64)
dataset = pipeline.make_dataset(examples, image_size=32, batch_size=4, is_training=True, seed=0,
                            epoch=epoch)
distributed = strategy.experimental_distribute_dataset(dataset)
for number in (0, 1):
    epoch.assign(number)
    seen = []
    for images, labels in distributed:
        for local in strategy.experimental_local_results(labels):
            seen += [int(x) for x in tf.reduce_sum(local, axis=[1, 2, 3]).numpy()]
    print("SEEN", json.dumps(seen))
"""


@pytest.mark.slow
def test_workers_see_disjoint_shares_of_each_epoch(tmp_path):
    # Each mask has a different number of lesion pixels, which identifies the example.
    import cv2

    root = tmp_path / "isic"
    images, masks = (
        root / name for name in ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth")
    )
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for i in range(8):
        cv2.imwrite(str(images / f"ISIC_{i:07d}.jpg"), np.full((32, 32, 3), 128, np.uint8))
        mask = np.zeros((32, 32), np.uint8)
        mask.flat[: i + 1] = 255
        cv2.imwrite(str(masks / f"ISIC_{i:07d}_segmentation.png"), mask)
    results = start_workers(["-c", SHARD_SCRIPT, str(root)])
    shares = []  # [worker][epoch]
    for returncode, stdout, stderr in results:
        assert returncode == 0, stderr[-3000:]
        shares.append(
            [
                json.loads(line.split("SEEN", 1)[1])
                for line in stdout.splitlines()
                if line.startswith("SEEN")
            ]
        )
    for epoch in (0, 1):
        seen = [shares[0][epoch], shares[1][epoch]]
        assert len(seen[0]) == len(seen[1]) == 4
        assert not set(seen[0]) & set(seen[1])  # no example on both workers
        assert sorted(seen[0] + seen[1]) == list(range(1, 9))  # together, the whole epoch
    assert shares[0][0] != shares[0][1]  # each epoch is drawn anew


MIRRORED_SCRIPT = """
import sys
import tensorflow as tf
from absl import logging
logging.set_verbosity(logging.INFO)
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from lesionseg_tf import datasets, distribute, pipeline, training
strategy = distribute.make_strategy("mirrored")
examples = datasets.find_split(sys.argv[1], split="training")
dataset = pipeline.make_dataset(examples, image_size=32, batch_size=4, is_training=True)
images, labels = next(iter(strategy.experimental_distribute_dataset(dataset)))
shapes = [tuple(t.shape) for t in strategy.experimental_local_results(images)]
print("REPLICAS", strategy.num_replicas_in_sync, "SHAPES", shapes)
from lesionseg_tf.config import RunConfig
config = RunConfig(data_dir=sys.argv[1], image_size=32, batch_size=4, max_epochs=1,
                   select_on="validation")  # 4 pairs: a whole batch for the 2 replicas
result = training.run(config, model_dir=sys.argv[2], strategy=strategy, verbose=0)
print("TRAINED", result["epochs_run"])
try:  # 10% of 8 pairs held out: 1 pair for 2 replicas
    training.run(RunConfig(data_dir=sys.argv[1], image_size=32, batch_size=4, max_epochs=1),
                 model_dir=sys.argv[2] + "_small", strategy=strategy, verbose=0)
except ValueError as e:
    print("REFUSED", e)
"""


@pytest.mark.slow
def test_mirrored_splits_the_global_batch_over_two_cpu_devices(tiny_isic, tmp_path):
    env = script_env()
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, tiny_isic, str(tmp_path / "run")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REPLICAS 2 SHAPES [(2, 32, 32, 3), (2, 32, 32, 3)]" in result.stdout
    assert "global batch 4 = 2 replica(s) x 2" in result.stderr
    assert "TRAINED 1" in result.stdout
    assert (
        "REFUSED 1 selection pair(s) for 2 replicas: each replica scores its share of them; "
        "raise --holdout_fraction"
    ) in result.stdout


@pytest.mark.slow
def test_multi_worker_without_tf_config_is_one_line(tiny_isic, tmp_path):
    env_free = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--strategy=multi_worker",
            f"--data_dir={tiny_isic}",
            f"--model_dir={tmp_path / 'run'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=dict(env_free, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO_ROOT),
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "needs the TF_CONFIG environment variable" in result.stderr.splitlines()[-1]


def test_strategy_choice_and_chief_in_process(monkeypatch):
    from lesionseg_tf import distribute
    from lesionseg_tf.model import build_model

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.make_strategy("multi_worker")
    with pytest.raises(ValueError, match="unknown strategy"):
        distribute.make_strategy("ring")
    strategy = distribute.make_strategy("auto")  # no GPU here: the default strategy
    assert strategy is tf.distribute.get_strategy() and distribute.is_chief(strategy)
    tf.keras.utils.set_random_seed(0)
    first = distribute.weights_digest(build_model())
    tf.keras.utils.set_random_seed(0)
    assert distribute.weights_digest(build_model()) == first
    assert distribute.weights_digest(build_model()) != first
