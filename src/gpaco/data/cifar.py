"""CIFAR-10-LT and CIFAR-100-LT from the standard python-pickle files.

Layout (what torchvision's downloader leaves on disk):
  root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}   key 'labels'
  root/cifar-100-python/{train, test, meta}                              key 'fine_labels'
each a pickled dict with 'data' uint8 (N, 3072), channel-planar (R, G, B planes of 32x32).
The training split is subsampled with the Cao et al. generator (see longtail.py); the test
split is the full balanced test set.
"""
from __future__ import annotations

import hashlib
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from gpaco.data.in_memory import ArrayDataset, subsample_longtail
from gpaco.data.longtail import check_imbalance
from gpaco.errors import UserError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pickle(path: Path) -> dict[str, Any]:
    """Unpickle a CIFAR batch file; keys come back as str whatever the pickle's encoding.

    Like torchvision, this unpickles the file: only open files from a source you trust.
    """
    if not path.is_file():
        raise UserError(f"missing CIFAR file {path}")
    try:
        with open(path, "rb") as f:
            # latin1 reads the official Python-2 pickles; numpy arrays survive it unchanged.
            obj = pickle.load(f, encoding="latin1")
    except Exception as e:  # a truncated pickle fails in many ways (EOFError, UnpicklingError, ...)
        raise UserError(f"cannot read CIFAR file {path} (truncated or not a CIFAR pickle: "
                        f"{type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise UserError(f"CIFAR file {path} holds a {type(obj).__name__}, expected a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) uint8 images and (N,) int64 labels of one CIFAR pickle."""
    d = load_pickle(path)
    if "data" not in d or label_key not in d:
        raise UserError(f"CIFAR file {path} lacks key 'data' or {label_key!r} "
                        f"(has {sorted(d)}); CIFAR-10 uses 'labels', CIFAR-100 'fine_labels'")
    x = np.asarray(d["data"], dtype=np.uint8)
    y = np.asarray(d[label_key], dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
        raise UserError(f"CIFAR file {path}: expected 'data' (N, 3072) and N labels, "
                        f"got {x.shape} and {len(y)}")
    return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


class _CIFARLT(ArrayDataset):
    base_folder: ClassVar[str]
    train_list: ClassVar[list[tuple[str, str]]]  # (file name, official md5)
    test_list: ClassVar[list[tuple[str, str]]]
    label_key: ClassVar[str]
    class_names: ClassVar[list[str]]
    torchvision_name: ClassVar[str]

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        transform: Callable | None = None,
        *,
        imb_factor: float = 0.01,
        imb_type: Literal["exp", "step"] = "exp",
        subset_seed: int = 0,
        download: bool = False,
    ) -> None:
        check_imbalance(imb_factor, imb_type)
        self.root = Path(root).expanduser()
        self.train = train
        files = self.train_list if train else self.test_list
        folder = self._find_folder(files, download)
        self._check_md5(folder, files)
        parts = [read_batch(folder / name, self.label_key) for name, _ in files]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        num_classes = len(self.class_names)
        if y.min() < 0 or y.max() >= num_classes:
            raise UserError(f"{folder}: labels must be in 0..{num_classes - 1}, "
                            f"found {y.min()}..{y.max()}")
        if train:
            x, y = subsample_longtail(x, y, num_classes, imb_factor, imb_type, subset_seed)
        self.imb_factor, self.imb_type, self.subset_seed = imb_factor, imb_type, subset_seed
        super().__init__(np.ascontiguousarray(x), y.tolist(), self.class_names, transform)

    def _find_folder(self, files: list[tuple[str, str]], download: bool) -> Path:
        """root/<base_folder>, or root itself if it already is that folder."""
        for folder in (self.root / self.base_folder, self.root):
            if all((folder / name).exists() for name, _ in files):
                return folder
        if download:
            self._download()
            return self.root / self.base_folder
        missing = [n for n, _ in files if not (self.root / self.base_folder / n).exists()]
        raise UserError(f"missing CIFAR file {self.root / self.base_folder / missing[0]} "
                        f"(set data.download=true, or data.root= the folder holding {self.base_folder}/)")

    def _download(self) -> None:
        import torchvision.datasets as tvd

        try:
            getattr(tvd, self.torchvision_name)(str(self.root), train=self.train, download=True)
        except Exception as e:  # no network, disk full, bad archive...: all are the user's to fix
            raise UserError(f"downloading {self.torchvision_name} into {self.root} failed: "
                            f"{type(e).__name__}: {e}".replace("\n", " ")) from None

    def _check_md5(self, folder: Path, files: list[tuple[str, str]]) -> None:
        # People keep re-encoded copies (e.g. rebuilt from JPEGs); they work but are not the
        # official pixels, so warn instead of refusing.
        bad = [name for name, md5 in files if (folder / name).is_file()
               and md5sum(folder / name) != md5]
        if bad:
            warnings.warn(f"{type(self).__name__}: md5 of {', '.join(bad)} in {folder} differs "
                          "from the official release (re-encoded copy?); results may not match "
                          "published numbers", stacklevel=3)


class CIFAR10LT(_CIFARLT):
    """CIFAR-10-LT: 5,000 → 5,000·imb_factor images per class (IF 0.01 exp: 12,406 images)."""

    base_folder = "cifar-10-batches-py"
    train_list = [("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                  ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                  ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                  ("data_batch_4", "634d18415352ddfa80567beed471001a"),
                  ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")]
    test_list = [("test_batch", "40351d587109b95175f43aff81a1287e")]
    label_key = "labels"
    class_names = CIFAR10_CLASSES
    torchvision_name = "CIFAR10"


class CIFAR100LT(_CIFARLT):
    """CIFAR-100-LT: 500 → 500·imb_factor images per class (IF 0.01 exp: 10,847 images)."""

    base_folder = "cifar-100-python"
    train_list = [("train", "16019d7e3df5f24257cddd939b257f8d")]
    test_list = [("test", "f0ef6b0ae62326f3e7ffdfab6717acfc")]
    label_key = "fine_labels"
    class_names = CIFAR100_CLASSES
    torchvision_name = "CIFAR100"
