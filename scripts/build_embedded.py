#!/usr/bin/env python3
"""Build gpaco's embedded default dataset, src/gpaco/assets/fmnist_lt.npz (+ its licence file).

A small long-tailed Fashion-MNIST, deterministic given the standard idx files:
  train: Cao et al. exponential profile, n_max=1000, imb_factor=0.01, seed 0, drawn from the
         60,000 training images -> 1000, 599, 359, 215, 129, 77, 46, 27, 16, 10 (2,478 images);
  test:  200 per class drawn from the 10,000 test images with the same generator (2,000);
  val:   100 per class drawn (seed 1) from the training images the long-tailed subset left out
         (1,000): balanced, disjoint from train and test, for post-hoc fitting and model choice.
Images stay 28x28 grey uint8 (the loader expands them to RGB). The zip members carry a fixed
timestamp, so rebuilding from the same idx files gives a byte-identical file.

Usage: python scripts/build_embedded.py [--idx-dir /usr/share/datasets/fashion-mnist] [--out DIR]
(the idx files come with `apt-get install dataset-fashion-mnist` or torchvision's downloader).
"""
from __future__ import annotations

import argparse
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from gpaco.data.fashion_mnist import FASHION_MNIST_CLASSES, SYSTEM_DIR, load_fashion_mnist
from gpaco.data.longtail import longtail_counts, longtail_indices

N_MAX, IMB_FACTOR, IMB_TYPE, SEED, TEST_PER_CLASS = 1000, 0.01, "exp", 0, 200
VAL_PER_CLASS, VAL_SEED = 100, 1
ASSETS = Path(__file__).resolve().parents[1] / "src" / "gpaco" / "assets"
LICENSE_TEXT = """\
# Fashion-MNIST (subset embedded in gpaco as fmnist_lt.npz)

`fmnist_lt.npz` holds 5,478 images of Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017,
"Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms",
arXiv:1708.07747; https://github.com/zalandoresearch/fashion-mnist), selected by
`scripts/build_embedded.py`. Fashion-MNIST is distributed under the MIT (Expat) licence:

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def build_arrays(idx_dir: Path) -> dict[str, np.ndarray]:
    x_train, y_train = load_fashion_mnist(idx_dir, train=True)
    x_test, y_test = load_fashion_mnist(idx_dir, train=False)
    num_classes = len(FASHION_MNIST_CLASSES)
    train_idx = longtail_indices(y_train, longtail_counts(N_MAX, num_classes, IMB_FACTOR, IMB_TYPE), SEED)
    test_idx = longtail_indices(y_test, [TEST_PER_CLASS] * num_classes, SEED)
    unused = y_train.astype(np.int64)
    unused[train_idx] = -1  # never a class: the validation images are not training images
    val_idx = longtail_indices(unused, [VAL_PER_CLASS] * num_classes, VAL_SEED)
    meta = {"source": "Fashion-MNIST idx files", "n_max": N_MAX, "imb_factor": IMB_FACTOR,
            "imb_type": IMB_TYPE, "seed": SEED, "test_per_class": TEST_PER_CLASS,
            "val_per_class": VAL_PER_CLASS, "val_seed": VAL_SEED}
    return {
        "train_x": x_train[train_idx], "train_y": y_train[train_idx].astype(np.uint8),
        "test_x": x_test[test_idx], "test_y": y_test[test_idx].astype(np.uint8),
        # positions in the original idx files, for provenance (all < 65,536)
        "val_x": x_train[val_idx], "val_y": y_train[val_idx].astype(np.uint8),
        "train_index": train_idx.astype(np.uint16), "test_index": test_idx.astype(np.uint16),
        "val_index": val_idx.astype(np.uint16),
        "classes": np.array(FASHION_MNIST_CLASSES), "meta": np.array(json.dumps(meta, sort_keys=True)),
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but with fixed zip timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr.copy(order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--idx-dir", type=Path, default=SYSTEM_DIR, help="folder of the idx(.gz) files")
    ap.add_argument("--out", type=Path, default=ASSETS, help="output folder")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    arrays = build_arrays(args.idx_dir)
    write_npz(args.out / "fmnist_lt.npz", arrays)
    (args.out / "LICENSE-fashion-mnist.md").write_text(LICENSE_TEXT)
    size = (args.out / "fmnist_lt.npz").stat().st_size
    print(f"wrote {args.out / 'fmnist_lt.npz'} ({size / 1e6:.2f} MB): "
          f"{len(arrays['train_y'])} train, {len(arrays['val_y'])} val, "
          f"{len(arrays['test_y'])} test images")


if __name__ == "__main__":
    main()
