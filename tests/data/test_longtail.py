import numpy as np
import pytest

from gpaco.data.longtail import class_counts, longtail_counts, longtail_indices
from gpaco.errors import UserError


def reference_indices(targets, counts, seed):
    """The generator of imbalance_cifar.py (LDAM-DRW / PaCo), with the global legacy RNG."""
    np.random.seed(seed)
    targets = np.array(targets, dtype=np.int64)
    new = []
    for the_class, the_img_num in zip(np.unique(targets), counts):
        idx = np.where(targets == the_class)[0]
        np.random.shuffle(idx)
        new.append(idx[:the_img_num])
    return np.concatenate(new)


@pytest.mark.parametrize("n_max, num_classes, imb_factor, total", [
    (500, 100, 0.01, 10_847), (500, 100, 0.02, 12_608), (500, 100, 0.1, 19_573),
    (500, 100, 1.0, 50_000), (5000, 10, 0.01, 12_406),
])
def test_exp_profile_totals(n_max, num_classes, imb_factor, total):
    counts = longtail_counts(n_max, num_classes, imb_factor)
    assert sum(counts) == total
    assert counts[0] == n_max and counts[-1] == int(n_max * imb_factor)


def test_exp_profile_values_and_groups():
    assert longtail_counts(5000, 10, 0.01) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    counts = np.array(longtail_counts(500, 100, 0.01))
    assert ((counts > 100).sum(), ((counts >= 20) & (counts <= 100)).sum(), (counts < 20).sum()) \
        == (35, 35, 30)


def test_step_profile():
    assert longtail_counts(100, 4, 0.1, "step") == [100, 100, 10, 10]
    assert longtail_counts(100, 5, 0.1, "step") == [100, 100, 10, 10, 10]


def test_edge_cases():
    assert longtail_counts(7, 1, 0.01) == [7]
    assert longtail_counts(50, 3, 1.0) == [50, 50, 50]


@pytest.mark.parametrize("bad", [dict(imb_factor=0.0), dict(imb_factor=1.5),
                                 dict(imb_type="linear"), dict(n_max=0)])
def test_bad_arguments_raise_user_error(bad):
    kw = dict(n_max=100, num_classes=10, imb_factor=0.1, imb_type="exp") | bad
    with pytest.raises(UserError):
        longtail_counts(**kw)


@pytest.mark.parametrize("seed", [0, 1, 123])
def test_indices_match_global_rng_reference(seed):
    targets = np.random.default_rng(5).permutation(np.repeat(np.arange(10), 300))
    counts = longtail_counts(300, 10, 0.02)
    ours = longtail_indices(targets.tolist(), counts, seed)
    np.testing.assert_array_equal(ours, reference_indices(targets, counts, seed))
    assert np.bincount(targets[ours]).tolist() == counts
    # class-major order
    assert (np.diff(targets[ours]) >= 0).all()


def test_indices_leave_global_rng_alone():
    np.random.seed(42)
    expected = np.random.rand()
    np.random.seed(42)
    longtail_indices(np.repeat(np.arange(3), 5), [5, 3, 1], seed=0)
    assert np.random.rand() == expected


def test_balanced_and_short_classes():
    targets = np.repeat(np.arange(4), 6)
    assert sorted(longtail_indices(targets, [6] * 4, 0)) == list(range(24))
    # a class with fewer images than asked for keeps what it has (as the original slicing does)
    assert len(longtail_indices(targets, [10, 1, 1, 1], 0)) == 9


def test_class_counts():
    assert class_counts([0, 2, 2], 4) == [1, 0, 2, 0]


def test_a_class_left_without_images_is_an_error():
    # 40 images a class at IF 0.01 (a recipe's value on a user's small folder): the tail class
    # would get int(40 * 0.01) = 0 images and train nothing.
    with pytest.raises(UserError, match="leaves class 2 with 0 of 40"):
        longtail_counts(40, 3, 0.01)
    with pytest.raises(UserError, match="0 of 40"):
        longtail_counts(40, 4, 0.01, "step")
    assert longtail_counts(40, 3, 0.1) == [40, 12, 4]
