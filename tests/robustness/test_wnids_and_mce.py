"""Class lists shipped as data, and the two mCE definitions on hand-computed tables."""

from __future__ import annotations

import pytest

from gpaco.errors import UserError
from gpaco.tasks.classification.robustness import (
    ALEXNET_ERRORS, CATEGORY, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, corruption_errors,
    imagenet_r_indices, imagenet_r_wnids, imagenet_wnids, mce_alexnet, mce_unnormalized,
)


def test_imagenet_1k_list_is_1000_sorted_unique_wnids() -> None:
    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[-1] == "n15075141"  # tench ... toilet tissue
    assert all(len(w) == 9 and w[0] == "n" and w[1:].isdigit() for w in wnids)


def test_imagenet_r_list_is_the_published_200_inside_the_1k_list() -> None:
    r = imagenet_r_wnids()
    assert len(r) == 200 and len(set(r)) == 200 and list(r) == sorted(r)
    assert set(r) <= set(imagenet_wnids())
    idx = imagenet_r_indices()
    assert list(idx) == sorted(idx) and [imagenet_wnids()[i] for i in idx] == list(r)
    assert r[0] == "n01443537" and idx[:3] == (1, 2, 4)  # goldfish, great white shark, hammerhead


def test_lists_equal_timms_metadata() -> None:
    timm_data = pytest.importorskip("timm.data")
    from importlib import resources

    info = resources.files(timm_data) / "_info"
    assert tuple((info / "imagenet_synsets.txt").read_text().split()) == imagenet_wnids()
    assert tuple((info / "imagenet_r_synsets.txt").read_text().split()) == imagenet_r_wnids()


def test_corruption_constants() -> None:
    assert len(CORRUPTIONS) == 15 and len(ALEXNET_ERRORS) == 15
    assert set(CATEGORY) == set(CORRUPTIONS) | set(EXTRA_CORRUPTIONS)
    assert [CATEGORY[c] for c in CORRUPTIONS].count("weather") == 4
    assert ALEXNET_ERRORS["gaussian_noise"] == 0.886428 and ALEXNET_ERRORS["jpeg_compression"] == 0.6065


def _table(value) -> dict[tuple[str, int], float]:
    return {(c, s): value(c, s) for c in CORRUPTIONS for s in SEVERITIES}


def test_errors_equal_to_alexnets_give_rel_mce_100() -> None:
    errors = _table(lambda c, s: ALEXNET_ERRORS[c])
    assert mce_alexnet(errors) == pytest.approx(100.0)
    # By hand: the 15 AlexNet errors sum to 11.834896, so their mean is 0.78899307 -> 78.899307.
    assert mce_unnormalized(errors) == pytest.approx(78.899307, abs=1e-6)


def test_mean_over_severities_then_corruptions_by_hand() -> None:
    # 0.5 everywhere except gaussian_noise = 0.2, 0.4, 0.6, 0.8, 1.0 (mean 0.6).
    errors = _table(lambda c, s: 0.2 * s if c == "gaussian_noise" else 0.5)
    assert corruption_errors(errors)["gaussian_noise"] == pytest.approx(0.6)
    assert mce_unnormalized(errors) == pytest.approx(100 * (14 * 0.5 + 0.6) / 15)  # 50.6667
    assert mce_alexnet(errors) == pytest.approx(
        100 / 15 * (0.6 / 0.886428 + sum(0.5 / ALEXNET_ERRORS[c] for c in CORRUPTIONS[1:])))


def test_extras_never_enter_the_mce_and_partial_tables_average_what_is_there() -> None:
    errors = {("gaussian_noise", 1): 0.4, ("gaussian_noise", 2): 0.6, ("fog", 5): 0.1,
              ("spatter", 3): 1.0}
    assert mce_unnormalized(errors) == pytest.approx(100 * (0.5 + 0.1) / 2)
    assert mce_alexnet(errors) == pytest.approx(100 * (0.5 / 0.886428 + 0.1 / 0.819324) / 2)
    with pytest.raises(UserError, match="no ImageNet-C corruption"):
        mce_unnormalized({("spatter", 1): 0.3})
