import numpy as np
import pytest
import torch

from gpaco.errors import UserError
from gpaco.evaluation.prior_shift import (Shift, adjust_to_prior, em_prior, evaluate_shift_suite,
                                          shifted_indices, shifts, subset_sizes, training_order)

COUNTS = [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]  # the embedded demo's training counts
LABELS = np.repeat(np.arange(10), 200)  # a balanced test set of 200 per class


def test_forward_and_backward_sizes_follow_the_training_order():
    order = training_order([5, 50, 50, 1])
    assert order == [1, 2, 0, 3]  # ties by index
    forward = subset_sizes(200, list(range(10)), Shift("forward", 50))
    assert forward[0] == 200 and forward[9] == 4
    assert [forward[c] for c in range(10)] == sorted(forward.values(), reverse=True)
    assert forward[4] == round(200 * 50 ** (-4 / 9))
    backward = subset_sizes(200, list(range(10)), Shift("backward", 50))
    assert [backward[c] for c in range(10)] == [forward[9 - c] for c in range(10)]
    assert set(subset_sizes(200, list(range(10)), Shift("uniform", 1)).values()) == {200}
    assert [s.name for s in shifts()][:6] == ["forward-50", "forward-25", "forward-10",
                                              "forward-5", "forward-2", "uniform"]


def test_subsets_are_deterministic_and_inside_the_test_set():
    a = shifted_indices(LABELS, COUNTS, Shift("backward", 10))
    assert np.array_equal(a, shifted_indices(LABELS, COUNTS, Shift("backward", 10)))
    per = np.bincount(LABELS[a], minlength=10)
    assert per[9] == 200 and per[0] == 20 and len(set(a.tolist())) == len(a)


def test_refusals():
    with pytest.raises(UserError, match="needs at least 300 test samples per class; the test "
                                        "set has 200"):
        shifted_indices(LABELS, COUNTS, Shift("forward", 300))
    with pytest.raises(UserError, match="class 3 has no test sample"):
        shifted_indices(LABELS[LABELS != 3], COUNTS, Shift("forward", 2))
    with pytest.raises(UserError, match="has 3 entries but the logits have 2"):
        adjust_to_prior(torch.zeros(4, 2), torch.ones(2), torch.ones(3))
    with pytest.raises(UserError, match="non-negative; entry 0 is -0.5"):
        adjust_to_prior(torch.zeros(4, 2), torch.ones(2), torch.tensor([-0.5, 1.5]))


def test_em_recovers_the_prior_of_exact_posteriors():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.0, 1.5, 3.0, 4.5])
    q = torch.tensor([0.55, 0.25, 0.15, 0.05], dtype=torch.float64)
    y = torch.multinomial(q, 20000, replacement=True, generator=g)
    x = mu[y] + torch.randn(20000, generator=g)
    posterior = torch.softmax(-(x[:, None] - mu) ** 2 / 2, 1)  # exact under a uniform prior
    estimate = em_prior(posterior, torch.full((4,), 0.25, dtype=torch.float64))
    assert (estimate - q).abs().max() < 0.02
    # with the true prior known, the adjustment is Bayes' rule: p(y|x) q(y) / p_s(y)
    adjusted = adjust_to_prior(posterior.log(), torch.ones(4), q)
    expected = posterior.double() * q / 0.25
    assert torch.allclose(torch.softmax(adjusted, 1), expected / expected.sum(1, keepdim=True))


def test_suite_rows_for_several_models():
    g = torch.Generator().manual_seed(1)
    labels = torch.from_numpy(LABELS)
    good = torch.nn.functional.one_hot(labels, 10).double() * 3 + torch.randn(2000, 10,
                                                                              generator=g)
    models = {"a": good, "b": torch.randn(2000, 10, generator=g)}
    rows = evaluate_shift_suite(models, labels, COUNTS, {"a": (good, torch.ones(10))})
    assert len(rows) == 2 * 11
    uniform = next(r for r in rows if r.model == "a" and r.shift == "uniform")
    assert uniform.samples == 2000
    assert uniform.top1 == pytest.approx(100 * float((good.argmax(1) == labels).double().mean()))
    assert uniform.top1_known_prior == pytest.approx(uniform.top1)  # uniform -> uniform
    assert 0 <= uniform.em_prior_tv < 0.1
    assert all(r.top1_em_prior is None for r in rows if r.model == "b")
