import math

import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from gpaco.evaluation.calibration import CalibrationCounter, adaptive_ece, calibration
from gpaco.tasks.classification.metrics import shot_groups

# p = softmax(log p): four samples of two classes whose confidences sit inside 10-bin bins
PROBS = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.25, 0.75], [0.65, 0.35]],
                     dtype=torch.float64)
LABELS = torch.tensor([0, 1, 1, 0])


@pytest.mark.parametrize("scale", [0.5, 2.0, 3.0])
def test_ece_and_mce_match_torchmetrics(scale):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3000, 7, generator=g) * scale
    labels = torch.randint(0, 7, (3000,), generator=g)
    # torchmetrics rounds confidences to float32 and gives those of exactly 1 a bin of their
    # own; gpaco counts them in the last bin: compare where no confidence rounds to 1
    assert torch.softmax(logits.double(), 1).max(1).values.float().max() < 1
    ours = calibration(logits, labels, bins=15).metrics["overall"]
    for norm, key in (("l1", "ece"), ("max", "mce")):
        ref = MulticlassCalibrationError(num_classes=7, n_bins=15, norm=norm)
        expected = float(ref(torch.softmax(logits.double(), 1), labels))
        assert ours[key] / 100 == pytest.approx(expected, abs=1e-6)


def test_hand_made_case():
    m = calibration(PROBS.log(), LABELS, bins=10).metrics["overall"]
    # bins: 0.95 (2 samples, 1 correct), 0.75 (correct), 0.65 (correct)
    assert m["ece"] == pytest.approx(100 * (2 * 0.45 + 0.25 + 0.35) / 4)
    assert m["mce"] == pytest.approx(45.0)
    assert m["nll"] == pytest.approx(-(math.log(0.95) + math.log(0.05) + math.log(0.75)
                                       + math.log(0.65)) / 4)
    assert m["brier"] == pytest.approx((0.005 + 1.805 + 0.125 + 0.245) / 4)
    # class 0: p0 = .95, .95 (one y=1), .25 (y=0), .65 (y=1); class 1 mirrors it
    assert m["classwise_ece"] == pytest.approx(100 * (0.9 + 0.25 + 0.35) / 4)


def test_adaptive_ece_by_hand():
    conf = torch.tensor([0.65, 0.75, 0.95, 0.95], dtype=torch.float64)
    hit = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    # three equal-mass bins of 2, 1, 1 samples: |2 - 1.4| + |1 - .95| + |0 - .95|
    assert adaptive_ece(conf, hit, bins=3) == pytest.approx((0.6 + 0.05 + 0.95) / 4)
    assert adaptive_ece(conf, hit, bins=1) == pytest.approx(abs(3 - 3.3) / 4)


def test_groups_take_the_samples_of_their_true_classes():
    result = calibration(PROBS.log(), LABELS, shot_groups([200, 5]), bins=10)
    assert result.metrics["many"]["ece"] == pytest.approx(100 * (0.05 + 0.35) / 2)
    assert result.metrics["few"]["ece"] == pytest.approx(100 * (0.95 + 0.25) / 2)
    assert result.metrics["medium"] is None
    # class-wise ECE of a group: its classes' ECE over all samples
    assert result.metrics["many"]["classwise_ece"] == pytest.approx(100 * 1.5 / 4)
    assert result.reliability["few"].count[9] == 1 and result.reliability["few"].count[7] == 1
    assert calibration(PROBS.log(), LABELS).metrics["many"] is None  # groups unknown


def test_batches_accumulate_to_the_whole_set():
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(500, 5, generator=g) * 3, torch.randint(0, 5, (500,), generator=g)
    counter = CalibrationCounter(5)
    for chunk in range(0, 500, 64):
        counter.update(logits[chunk:chunk + 64], labels[chunk:chunk + 64])
    groups = shot_groups([500, 300, 50, 30, 5])
    assert counter.result(groups).metrics == calibration(logits, labels, groups).metrics


def test_classwise_ece_against_a_loop():
    g = torch.Generator().manual_seed(2)
    logits, labels = torch.randn(400, 4, generator=g) * 2, torch.randint(0, 4, (400,), generator=g)
    p = torch.softmax(logits.double(), 1)
    total = 0.0
    for c in range(4):
        err = 0.0
        for b in range(15):
            inside = [i for i in range(400) if min(int(p[i, c] * 15), 14) == b]
            if inside:
                err += abs(sum(float(p[i, c]) for i in inside)
                           - sum(float(labels[i] == c) for i in inside))
        total += err / 400
    assert calibration(logits, labels).metrics["overall"]["classwise_ece"] == \
        pytest.approx(100 * total / 4, abs=1e-9)
