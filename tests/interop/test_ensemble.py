"""The paper's ensembles: the plain sum of the members' raw logits."""

from __future__ import annotations

import pytest
import torch

from _authors_layouts import randomize
from gpaco.errors import UserError
from gpaco.models import Classifier, GPaCoModel, PaCoModel, create_backbone
from gpaco.weights.ensemble import LogitEnsemble


def _member(kind: type, seed: int, classes: int = 5) -> torch.nn.Module:
    extra = {} if kind is Classifier else {"dim": 8, "queue_size": 4}
    return randomize(kind(create_backbone("resnet8"), classes, **extra), seed).eval()


def test_ensemble_is_the_hand_summed_logits() -> None:
    members = [_member(PaCoModel, 1), _member(GPaCoModel, 2), _member(Classifier, 3)]
    ensemble = LogitEnsemble(members, class_names=[["a"] * 5, None, ["a"] * 5]).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        by_hand = members[0](x) + members[1](x) + members[2](x)
        assert torch.equal(ensemble(x), by_hand)
    assert ensemble.num_classes == 5


def test_members_that_disagree_on_classes_are_refused() -> None:
    with pytest.raises(UserError, match="different class counts .*member 1: 7"):
        LogitEnsemble([_member(Classifier, 1), _member(Classifier, 2, classes=7)])
    with pytest.raises(UserError, match="member 1 labels its classes differently from member 0 "
                                        r"\(first difference at class 1\)"):
        LogitEnsemble([_member(Classifier, 1), _member(Classifier, 2)],
                      class_names=[["a", "b"], ["a", "c"]])
    with pytest.raises(UserError, match="at least one member"):
        LogitEnsemble([])
