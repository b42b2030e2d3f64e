import pickle

import pytest
import torch

from gpaco.weights.checkpoint import atomic_save, load_checkpoint, strip_prefixes
from gpaco.errors import UserError


class Exploding:
    def __reduce__(self):
        raise RuntimeError("killed while writing")


def test_failed_save_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"model": {"w": torch.ones(2)}, "epoch": 1}, path)
    with pytest.raises((RuntimeError, pickle.PicklingError)):
        atomic_save({"model": {"w": torch.zeros(2)}, "bad": Exploding()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_truncated_checkpoint_is_a_user_error(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"model": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_strip_prefixes():
    state = {"module._orig_mod.a": 1, "b": 2}
    assert strip_prefixes(state) == {"a": 1, "b": 2}
