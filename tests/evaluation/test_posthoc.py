import math

import pytest
import torch

from gpaco.errors import UserError
from gpaco.evaluation.posthoc import TAU_GRID, fit_posthoc, fit_tau, fit_temperature
from gpaco.evaluation.priors import as_prior


def _sampled(n: int, classes: int, temperature: float, seed: int = 0):
    """Logits and labels drawn from softmax(logits / temperature)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g) * 4
    labels = torch.multinomial(torch.softmax(logits / temperature, 1), 1, generator=g)[:, 0]
    return logits, labels


def test_temperature_recovers_the_generating_one_and_beats_a_grid():
    logits, labels = _sampled(20000, 5, 2.0)
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.0, rel=0.05)

    def nll(temp):
        return float(torch.nn.functional.cross_entropy(logits.double() / temp, labels))

    assert nll(t) <= min(nll(0.5 + 0.01 * k) for k in range(300)) + 1e-9


def test_tau_is_the_grid_value_with_the_best_accuracy():
    g = torch.Generator().manual_seed(3)
    prior = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    balanced = torch.randn(900, 3, generator=g, dtype=torch.float64)
    labels = balanced.argmax(1)  # a balanced-optimal classifier on a balanced set
    logits = balanced + prior.log()  # ... with the training prior added (plain CE)
    tau = fit_tau(logits, labels, prior)
    best = max(float(((logits - t * prior.log()).argmax(1) == labels).double().mean())
               for t in TAU_GRID)
    accuracy = float(((logits - tau * prior.log()).argmax(1) == labels).double().mean())
    assert accuracy == best == 1.0
    assert tau == 1.0  # the smallest |tau| reaching it on this set


def test_fit_refuses_the_test_split_and_bad_priors():
    logits, labels = _sampled(100, 3, 1.0)
    with pytest.raises(UserError, match="never on the test split"):
        fit_posthoc(logits, labels, [5, 3, 1], "test")
    with pytest.raises(UserError, match="has 2 entries but the logits have 3"):
        fit_posthoc(logits, labels, [5, 3], "val")
    with pytest.raises(UserError, match="non-negative; entry 1 is -3"):
        fit_posthoc(logits, labels, [5, -3, 1], "val")
    with pytest.raises(UserError, match="training class counts"):
        fit_posthoc(logits, labels, None, "val")
    assert as_prior([2, 1, 1], 3, "p").tolist() == [0.5, 0.25, 0.25]


def test_variants_apply_the_fitted_numbers():
    logits, labels = _sampled(3000, 3, 1.5, seed=4)
    fit = fit_posthoc(logits, labels, [600, 60, 6], "val")
    log_p = torch.tensor(fit.train_prior, dtype=torch.float64).log()
    z = logits.double()
    assert torch.equal(fit.apply(logits, "none"), z)
    assert torch.allclose(fit.apply(logits, "temperature"), z / fit.temperature)
    assert torch.allclose(fit.apply(logits, "logit_adjustment"), z - fit.tau * log_p)
    assert torch.allclose(fit.apply(logits, "both"), (z - fit.tau * log_p) / fit.tau_temperature)
    assert fit.tau_temperature == pytest.approx(fit_temperature(z - fit.tau * log_p, labels))
    assert math.isclose(sum(fit.train_prior), 1.0)
    with pytest.raises(UserError, match="variant"):
        fit.apply(logits, "platt")


def test_bias_corrected_temperature_recovers_temperature_and_biases():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(30000, 4, generator=g) * 3
    true_bias = torch.tensor([1.0, -0.5, 0.0, -0.5])
    labels = torch.multinomial(torch.softmax(logits / 1.5 + true_bias, 1), 1, generator=g)[:, 0]
    fit = fit_posthoc(logits, labels, [100, 50, 20, 5], "val")
    assert fit.bias_temperature == pytest.approx(1.5, rel=0.05)
    assert torch.allclose(torch.tensor(fit.bias), true_bias - true_bias.mean(), atol=0.06)
    val_prior = torch.bincount(labels, minlength=4).double() / len(labels)
    assert torch.allclose(fit.apply(logits, "bias_corrected"),
                          logits.double() / fit.bias_temperature + torch.tensor(fit.bias, dtype=torch.float64)
                          - val_prior.log())


def test_center_share_correction_and_training_prior_facts():
    from gpaco import run as C
    from gpaco.losses import center_weights
    from gpaco.tasks.classification.training_prior import center_shares, prior_in_loss

    counts = [1000, 599, 359, 215, 129, 77, 46, 27, 16, 10]
    cfg = C.load_config("default")
    w = center_shares(cfg, counts)
    assert torch.allclose(w, center_weights(counts, alpha=0.01, beta=1.0,
                                            contrast_size=2 * 32 + 1024))
    assert prior_in_loss(cfg) and prior_in_loss(C.load_config("default", overrides=[
        "method=balanced_softmax"]))
    assert not prior_in_loss(C.load_config("default", overrides=["method=ce"]))
    assert not prior_in_loss(C.load_config("default", overrides=["loss.prior=false"]))
    assert center_shares(C.load_config("default", overrides=["method=ce"]), counts) is None
    logits, labels = _sampled(500, 10, 1.0)
    fit = fit_posthoc(logits, labels, counts, "val", w.log().tolist())
    assert "center_share" in fit.variants()
    assert torch.allclose(fit.apply(logits, "center_share"), logits.double() - w.log().double())
    assert "center_share" not in fit_posthoc(logits, labels, counts, "val").variants()
