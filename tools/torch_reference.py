"""The paper's Table 1 written in PyTorch, for the benchmark's comparison only
(`python -m tools.benchmark --compare_torch`): the same layers, built from
`lesionseg_tf.table1.TABLE_1`, the same loss and optimizer. Needs torch, which the
project does not install.
"""

import os
import time


def train_images_per_s(image_size, batch_size, steps):
    """The same network, loss and optimizer in PyTorch (CPU), for comparison only."""
    import torch  # pylint: disable=import-outside-toplevel
    from torch import nn  # pylint: disable=import-outside-toplevel

    from lesionseg_tf.config import UPSCALE  # pylint: disable=import-outside-toplevel
    from lesionseg_tf.table1 import TABLE_1  # pylint: disable=import-outside-toplevel

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    layers, channels = [], 3
    for spec in TABLE_1:
        pad = spec.dilation * (spec.kernel - 1) // 2
        if pad:
            layers.append(nn.ReflectionPad2d(pad))
        layers.append(
            nn.Conv2d(
                channels,
                spec.filters,
                spec.kernel,
                stride=spec.stride,
                dilation=spec.dilation,
                bias=not spec.batch_norm,
            )
        )
        if spec.batch_norm:
            layers.append(nn.BatchNorm2d(spec.filters))
        if spec.relu:
            layers.append(nn.ReLU(inplace=True))
        channels = spec.filters
    layers.append(nn.PixelShuffle(UPSCALE))
    network = nn.Sequential(*layers)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.randn(batch_size, 3, image_size, image_size)
    labels = (torch.rand(batch_size, image_size, image_size) > 0.7).long()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(network(images), labels)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


if __name__ == "__main__":
    import sys

    print(
        __doc__.strip(), file=sys.stdout if sys.argv[1:] in ([], ["--help"], ["-h"]) else sys.stderr
    )
    sys.exit(0 if sys.argv[1:] in ([], ["--help"], ["-h"]) else 2)
