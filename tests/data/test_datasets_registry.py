import pytest

from _dataset_fakes import write_cifar10, write_png
from gpaco.tasks.classification.datasets import DATASETS, build_dataset, dataset_options, datasets_using
from gpaco.errors import UserError


def test_names():
    assert set(DATASETS) == {"cifar10_lt", "cifar100_lt", "fashion_mnist_lt", "embedded", "split_file",
                             "imagenet_lt", "places_lt", "inat2018", "image_folder"}
    assert list(dataset_options("cifar100_lt")) == ["imb_factor", "imb_type", "subset_seed",
                                                     "download"]
    assert dataset_options("embedded") == {"test_split": None}  # "test" (default) or "val"
    # num_classes is bound by the ImageNet-LT partial: only the generic split-file set takes it
    assert datasets_using("num_classes") == ["split_file"]
    assert datasets_using("val_split") == datasets_using("test_split")


def test_embedded_ignores_root_and_none_kwargs():
    ds = build_dataset("embedded", root="/anything", train=False, transform=None)
    assert len(ds) == 2000
    assert len(build_dataset("embedded", imb_factor=None)) == 2478
    with pytest.raises(UserError, match="does not take data.imb_factor"):
        build_dataset("embedded", imb_factor=0.1)


@pytest.mark.filterwarnings("ignore:.*md5:UserWarning")
def test_cifar_kwargs(tmp_path):
    write_cifar10(tmp_path)
    ds = build_dataset("cifar10_lt", tmp_path, imb_factor=0.1, subset_seed=1)
    assert ds.class_counts[0] == 100 and ds.class_counts[-1] == 10


def test_split_files_by_split(tmp_path):
    write_png(tmp_path / "a" / "0.png")
    (tmp_path / "train.txt").write_text("a/0.png 1\n")
    (tmp_path / "val.txt").write_text("a/0.png 364\n")
    kw = dict(train_split=tmp_path / "train.txt", test_split=tmp_path / "val.txt")
    assert build_dataset("places_lt", tmp_path, train=True, **kw).class_counts[1] == 1
    assert build_dataset("places_lt", tmp_path, train=False, **kw).targets == [364]
    assert build_dataset("split_file", tmp_path, **kw).num_classes == 2
    with pytest.raises(UserError, match="test_split is needed"):
        build_dataset("imagenet_lt", tmp_path, train=False, train_split=kw["train_split"])


def test_image_folder_train_and_val(tmp_path):
    for split in ["train", "val"]:
        for c in ["x", "y"]:
            for i in range(4):
                write_png(tmp_path / split / c / f"{i}.png")
    train = build_dataset("image_folder", tmp_path, imb_factor=0.25)
    assert train.class_counts == [4, 1]
    assert build_dataset("image_folder", tmp_path, train=False, imb_factor=0.25).class_counts == [4, 4]


def test_user_errors():
    with pytest.raises(UserError, match="unknown dataset 'cifar10'"):
        build_dataset("cifar10")
    with pytest.raises(UserError, match="does not take data.imbalance"):
        build_dataset("cifar10_lt", "/tmp", imbalance=0.1)
    with pytest.raises(UserError, match="needs a data root"):
        build_dataset("cifar100_lt")
