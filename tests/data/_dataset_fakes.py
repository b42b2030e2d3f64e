"""Writers of tiny files in the exact on-disk formats of the real datasets (for tests)."""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def to_rows(x: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072) channel-planar, as in the official CIFAR pickles."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), -1))


def write_pickle(path: Path, obj: dict, bytes_keys: bool = False) -> None:
    if bytes_keys:  # what a Python-2 pickle read with encoding="bytes" looks like
        obj = {k.encode(): v for k, v in obj.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def fake_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Random (N, 32, 32, 3) uint8 images whose pixel (0, 0, 0) is the sample's position mod 256."""
    x = np.random.default_rng(seed).integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(len(labels)) % 256
    return x


def write_cifar10(root: Path, per_class_per_batch: int = 20, test_per_class: int = 10,
                  bytes_keys: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """root/cifar-10-batches-py with 5 train batches; returns all train (images, labels)."""
    d = root / "cifar-10-batches-py"
    rng = np.random.default_rng(1)
    xs, ys = [], []
    for b in range(5):
        y = rng.permutation(np.repeat(np.arange(10), per_class_per_batch))
        x = fake_images(y, seed=b)
        write_pickle(d / f"data_batch_{b + 1}", {"batch_label": f"training batch {b + 1} of 5",
                     "labels": y.tolist(), "data": to_rows(x), "filenames": []}, bytes_keys)
        xs.append(x)
        ys.append(y)
    y = np.repeat(np.arange(10), test_per_class)
    write_pickle(d / "test_batch", {"labels": y.tolist(), "data": to_rows(fake_images(y, 9))},
                 bytes_keys)
    write_pickle(d / "batches.meta", {"label_names": []}, bytes_keys)
    return np.concatenate(xs), np.concatenate(ys)


def write_cifar100(root: Path, per_class: int = 5, test_per_class: int = 2,
                   zeros: bool = False) -> np.ndarray:
    """root/cifar-100-python/{train,test,meta}; zeros=True writes cheap blank images."""
    d = root / "cifar-100-python"
    y = np.random.default_rng(2).permutation(np.repeat(np.arange(100), per_class))
    for name, labels in (("train", y), ("test", np.repeat(np.arange(100), test_per_class))):
        x = np.zeros((len(labels), 3072), np.uint8) if zeros else to_rows(fake_images(labels))
        write_pickle(d / name, {"filenames": [], "batch_label": name, "fine_labels": labels.tolist(),
                                "coarse_labels": (labels // 5).tolist(), "data": x})
    write_pickle(d / "meta", {"fine_label_names": [], "coarse_label_names": []})
    return y


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    """A uint8 idx file: magic 0x0000 08 ndim, big-endian int32 dims, then the bytes."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    raw = header + np.ascontiguousarray(arr, np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def write_fashion_mnist(folder: Path, per_class: int = 30, test_per_class: int = 3,
                        gz: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The four idx files in `folder`; returns the train (images, labels)."""
    rng = np.random.default_rng(3)
    out = None
    for prefix, n in (("train", per_class), ("t10k", test_per_class)):
        y = rng.permutation(np.repeat(np.arange(10), n)).astype(np.uint8)
        x = rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", y, gz)
        out = out or (x, y)
    return out


def write_png(path: Path, value: int = 0, size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


# ------------------------------------------------------------------ long-tailed split-file sets
def jpeg_bytes(size: tuple[int, int] = (40, 32), value: int = 90) -> bytes:
    """One small JPEG (W, H), to write under many names cheaply."""
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, (value, 255 - value, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def first_line_per_class(split: Path, num_classes: int) -> list[str]:
    """`relative/path label` of the first image of each class in a shipped list (its layout)."""
    seen: dict[int, str] = {}
    for line in split.read_text().splitlines():
        path, label = line.rsplit(" ", 1)
        seen.setdefault(int(label), path)
    assert len(seen) == num_classes, split
    return [f"{seen[c]} {c}" for c in range(num_classes)]


def _made_up_line(source: str, c: int) -> str:
    """Class `c`'s line in the layout of shipped list `source`, with made-up names."""
    if source.startswith("ImageNet_LT"):
        from gpaco.tasks.classification.robustness.wnids import imagenet_wnids

        return f"val/{imagenet_wnids()[c]}/ILSVRC2012_val_{c + 1:08d}.JPEG {c}"
    if source.startswith("Places_LT"):
        return f"data_256/c/category{c:03d}/{c + 1:08d}.jpg {c}"
    return f"train_val2018/Plantae/{c}/{c:032x}.jpg {c}"  # iNaturalist


def lines_per_class(source: str, num_classes: int) -> list[str]:
    """One `relative/path label` line per class: the first of each class in the shipped list
    `source` (../shared/data/splits), or, without that folder (a clean clone), made-up lines in
    the same layout."""
    split = SHARED / "data" / "splits" / source
    if split.is_file():
        return first_line_per_class(split, num_classes)
    return [_made_up_line(source, c) for c in range(num_classes)]


def write_split_file_set(root: Path, train_lines: list[str], test_lines: list[str],
                         size: tuple[int, int] = (40, 32)) -> tuple[Path, Path]:
    """The images the lines name, under `root` in the lists' own layout (ImageNet's
    train/<wnid>/, Places' data_256/<letter>/<category>/, iNat's train_val2018/<kingdom>/<id>/),
    and the two lists beside it; returns (train list, test list)."""
    data = jpeg_bytes(size)
    for line in {*train_lines, *test_lines}:
        path = root / line.rsplit(" ", 1)[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    lists = []
    for name, lines in (("train.txt", train_lines), ("test.txt", test_lines)):
        (root.parent / name).write_text("\n".join(lines) + "\n")
        lists.append(root.parent / name)
    return lists[0], lists[1]


def write_image_folder(root: Path, classes: list[str], per_split: dict[str, int],
                       size: tuple[int, int] = (48, 40)) -> None:
    """root/<split>/<class>/<class>_<i>.JPEG (ImageNet's train/val wnid layout)."""
    for split, n in per_split.items():
        for k, name in enumerate(classes):
            for i in range(n):
                path = root / split / name / f"{name}_{i}.JPEG"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", size, (40 * k % 256, 90, 200)).save(path, "JPEG")


# ------------------------------------------------------------------ segmentation releases
def write_jpg(path: Path, h: int, w: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def stripes(h: int, w: int, values: list[int]) -> np.ndarray:
    """An (h, w) mask whose rows cycle through `values`."""
    return np.array(values)[np.arange(h) % len(values)][:, None].repeat(w, 1)


def write_ade20k(root: Path, h: int, w: int, train: int = 4, val: int = 1) -> Path:
    """root/ADEChallengeData2016/{images,annotations}/{training,validation}/ADE_*.{jpg,png}."""
    base = root / "ADEChallengeData2016"
    for split, n, prefix in (("training", train, "train"), ("validation", val, "val")):
        for i in range(n):
            name = f"ADE_{prefix}_{i + 1:08d}"
            write_jpg(base / "images" / split / f"{name}.jpg", h, w, seed=i)
            write_mask_png(base / "annotations" / split / f"{name}.png", stripes(h, w, [0, 1, 3, 150]))
    return base


def write_cityscapes(root: Path, h: int, w: int, train: int = 4, val: int = 1) -> Path:
    """root/leftImg8bit/<split>/<city>/*_leftImg8bit.png + gtFine/.../*_gtFine_labelIds.png."""
    for split, n in (("train", train), ("val", val)):
        for i in range(n):
            stem = f"aachen_{i:06d}_000019"
            write_jpg(root / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", h, w, i)
            write_mask_png(root / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png",
                           stripes(h, w, [7, 26, 0, 33, 8]))
    return root


def write_coco_stuff10k(root: Path, h: int, w: int, train: int = 4, test: int = 1) -> Path:
    """root/cocostuff-10k-v1.1/{images/*.jpg, annotations/*.mat ("S"), imageLists/*.txt}."""
    from scipy.io import savemat

    base = root / "cocostuff-10k-v1.1"
    names = {"train": [], "test": []}
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            name = f"COCO_train2014_{len(names['train']) + len(names['test']):012d}"
            names[split].append(name)
            write_jpg(base / "images" / f"{name}.jpg", h, w, seed=i)
            (base / "annotations").mkdir(exist_ok=True)
            savemat(base / "annotations" / f"{name}.mat",
                    {"S": stripes(h, w, [0, 1, 11, 92, 182]).astype(np.uint16)})
    (base / "imageLists").mkdir(exist_ok=True)
    for split, items in names.items():
        (base / "imageLists" / f"{split}.txt").write_text("\n".join(items) + "\n")
    return base


def write_pascal_context_release(root: Path, h: int, w: int, train: int = 4,
                                 val: int = 1) -> tuple[Path, Path]:
    """What `gpaco prepare pascal_context59` reads: VOCdevkit/VOC2010 (JPEGImages,
    ImageSets/Main/{train,val}.txt) and the release's trainval/<id>.mat (LabelMap, 459 ids)."""
    from scipy.io import savemat

    voc, mats = root / "VOCdevkit" / "VOC2010", root / "trainval"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    mats.mkdir(parents=True)
    k = 0
    for split, n in (("train", train), ("val", val)):
        ids = []
        for _ in range(n):
            name = f"2008_{k:06d}"
            ids.append(name)
            write_jpg(voc / "JPEGImages" / f"{name}.jpg", h, w, seed=k)
            savemat(mats / f"{name}.mat",
                    {"LabelMap": stripes(h, w, [2, 458, 0, 284]).astype(np.uint16)})
            k += 1
        (voc / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc.parent, mats
