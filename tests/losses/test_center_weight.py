"""center_weights: the formula, and that it is the center share at the PaCo loss's optimum."""

import math

import pytest
import torch
import torch.nn.functional as F

from gpaco.losses import center_weights, paco_loss


def test_formula_on_cifar10_lt_counts():
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10-LT IF 100
    w = center_weights(counts, alpha=0.01, contrast_size=1280)
    pi_head = 5000 / sum(counts)
    assert float(w[0]) == pytest.approx(1 / (1 + 0.01 * 1280 * pi_head))
    assert float(w[0]) == pytest.approx(0.162, abs=1e-3)  # the head center gets 1/6 of the target
    assert torch.all(w[:-1] < w[1:])  # frequent classes are discounted most
    assert torch.allclose(center_weights(counts, alpha=0.0, contrast_size=1280), torch.ones(10,
                                                                                           dtype=torch.float64))


@pytest.mark.parametrize("alpha, beta", [(0.01, 1.0), (0.2, 1.0), (0.05, 2.0)])
def test_center_share_is_stationary_for_the_loss(alpha, beta):
    """With the center's softmax share at beta / (beta + alpha |P|) the loss's gradient in the
    center logit vanishes; any other share gives a non-zero gradient."""
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(9, 8, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 2, 0, 1, 2, 0])  # anchor 0 has 4 positives among 8 others
    positives = int((labels[1:] == labels[0]).sum())
    temperature = 0.5
    others = torch.exp(feats[0] @ feats[1:].T / temperature).sum()  # gamma = 1
    share = beta / (beta + alpha * positives)

    def grad_at(center_share: float) -> float:
        own = math.log(center_share / (1 - center_share) * float(others))
        logits = torch.tensor([[own, -60.0, -60.0]], dtype=torch.float64, requires_grad=True)
        loss = paco_loss(feats, labels, logits, alpha=alpha, beta=beta, temperature=temperature)
        loss.backward()
        return float(logits.grad[0, 0])

    assert abs(grad_at(share)) < 1e-12
    assert abs(grad_at(share * 0.8)) > 1e-3
