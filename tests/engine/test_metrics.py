import torch

from gpaco.tasks.classification.metrics import evaluate_logits, shot_groups


def test_shot_groups_thresholds():
    groups = shot_groups([500, 101, 100, 20, 19, 5])
    assert groups == {"many": [0, 1], "medium": [2, 3], "few": [4, 5]}


def test_metrics_against_brute_force():
    g = torch.Generator().manual_seed(0)
    counts = [300, 150, 60, 30, 10, 5]
    labels = torch.randint(0, 6, (400,), generator=g)
    logits = torch.randn(400, 6, generator=g) + 2.0 * torch.nn.functional.one_hot(labels, 6)
    r = evaluate_logits(logits, labels, counts)
    pred = logits.argmax(1)
    per_class = []
    for c in range(6):
        mask = labels == c
        per_class.append(100.0 * (pred[mask] == c).sum().item() / mask.sum().item())
    assert r.per_class == per_class
    assert abs(r.top1 - 100.0 * (pred == labels).sum().item() / 400) < 1e-9
    assert abs(r.many - (per_class[0] + per_class[1]) / 2) < 1e-9
    assert abs(r.medium - (per_class[2] + per_class[3]) / 2) < 1e-9
    assert abs(r.few - (per_class[4] + per_class[5]) / 2) < 1e-9
    top5 = logits.topk(5, 1).indices
    assert abs(r.top5 - 100.0 * (top5 == labels[:, None]).any(1).sum().item() / 400) < 1e-9


def test_classes_absent_from_labels_are_left_out():
    logits = torch.eye(3)[[0, 0, 1]]
    r = evaluate_logits(logits, torch.tensor([0, 0, 1]), [200, 50, 5])
    assert r.per_class[2] is None and r.few is None and r.many == 100.0
