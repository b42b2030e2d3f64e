"""A few dozen SGD steps of PaCo / GPaCo on coloured-noise images: the loss must fall."""

from collections.abc import Callable

import pytest
import torch
from torch import nn

from gpaco.models import GPaCoModel, PaCoModel

NUM_CLASSES, BATCH, STEPS = 4, 16, 40
COLOURS = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 0]])


def _views(gen: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Two noisy 8x8 views of each sample's class colour."""
    y = torch.randint(0, NUM_CLASSES, (BATCH,), generator=gen)
    base = COLOURS[y][:, :, None, None].expand(BATCH, 3, 8, 8)
    views = [base + 0.8 * torch.randn(BATCH, 3, 8, 8, generator=gen) for _ in range(2)]
    return views, y


def _train(model: nn.Module) -> list[float]:
    from gpaco.losses.paco import PaCoLoss

    criterion = PaCoLoss(NUM_CLASSES, alpha=0.05, temperature=0.2)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    losses = []
    model.train()
    for _ in range(STEPS):
        out = model.forward_train(*_views(gen))
        loss = criterion(out.features, out.labels, out.center_logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("cls", [PaCoModel, GPaCoModel])
def test_loss_falls(cls: type[nn.Module], tiny_backbone: Callable[..., nn.Module]) -> None:
    torch.manual_seed(0)
    model = cls(tiny_backbone(16), NUM_CLASSES, dim=8, queue_size=64)
    losses = _train(model)
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    model.eval()
    views, y = _views(torch.Generator().manual_seed(1))
    with torch.no_grad():
        acc = (model(views[0]).argmax(1) == y).float().mean().item()
    assert acc > 0.5
