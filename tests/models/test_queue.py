import pytest
import torch

from gpaco.errors import UserError
from gpaco.models import LabeledQueue


def _batch(start: int, n: int, dim: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys whose every entry equals the row's id, labels = id (easy to read back)."""
    ids = torch.arange(start, start + n)
    return ids[:, None].float().expand(n, dim).clone(), ids


def test_empty_queue_has_no_contents() -> None:
    q = LabeledQueue(6, 2)
    keys, labels = q.contents()
    assert keys.shape == (0, 2) and labels.shape == (0,)
    assert len(q) == 0 and not q.is_full


def test_valid_prefix_before_full() -> None:
    q = LabeledQueue(6, 2)
    q.enqueue(*_batch(0, 4))
    keys, labels = q.contents()
    assert labels.tolist() == [0, 1, 2, 3]
    assert keys[:, 0].tolist() == [0, 1, 2, 3]
    assert int(q.count) == 4 and int(q.ptr) == 4 and len(q) == 4


def test_fifo_wrap_around_overwrites_oldest() -> None:
    q = LabeledQueue(6, 2)
    q.enqueue(*_batch(0, 4))
    q.enqueue(*_batch(4, 4))  # 4, 5 fill the end, 6, 7 overwrite slots 0, 1
    keys, labels = q.contents()
    assert q.is_full and int(q.count) == 6 and int(q.ptr) == 2
    assert labels.tolist() == [6, 7, 2, 3, 4, 5]
    assert keys[:, 1].tolist() == [6, 7, 2, 3, 4, 5]
    assert keys.data_ptr() == q.keys.data_ptr()  # full: the whole buffer, no slicing


def test_batch_larger_than_queue_keeps_last_rows_in_fifo_order() -> None:
    q = LabeledQueue(4, 2)
    q.enqueue(*_batch(0, 1))
    q.enqueue(*_batch(1, 6))  # as if 1..6 were written one by one from ptr 1: slots 1,2,3,0,1,2
    _, labels = q.contents()
    assert labels.tolist() == [4, 5, 6, 3] and int(q.ptr) == 3


def test_require_divisible() -> None:
    q = LabeledQueue(6, 2, require_divisible=True)
    q.enqueue(*_batch(0, 3))
    with pytest.raises(UserError):
        q.enqueue(*_batch(0, 4))


def test_zero_size_queue_is_a_no_op() -> None:
    q = LabeledQueue(0, 3)
    q.enqueue(torch.randn(5, 3), torch.arange(5))
    keys, labels = q.contents()
    assert keys.shape == (0, 3) and labels.numel() == 0


def test_state_dict_restores_count() -> None:
    q = LabeledQueue(6, 2)
    q.enqueue(*_batch(0, 4))
    fresh = LabeledQueue(6, 2)
    fresh.load_state_dict(q.state_dict())
    assert len(fresh) == 4
    assert fresh.contents()[1].tolist() == [0, 1, 2, 3]


def test_enqueue_detaches_and_casts() -> None:
    q = LabeledQueue(4, 2)
    keys = torch.randn(2, 2, requires_grad=True)
    q.enqueue(keys.to(torch.bfloat16), torch.tensor([1, 2], dtype=torch.int32))
    assert q.keys.dtype == torch.float32 and q.labels.dtype == torch.long
    assert not q.keys.requires_grad


def test_compiled_enqueue_stops_recompiling_once_full() -> None:
    """While filling, the prefix slice runs outside dynamo; once full the graph is stable."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    q = LabeledQueue(8, 2)
    counter = CompileCounter()

    @torch.compile(backend=counter)
    def step(keys: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        bank, _ = q.contents()
        q.enqueue(keys, labels)
        return (keys @ bank.T).sum()

    for i in range(4):  # full after 4 batches of 2
        step(*_batch(2 * i, 2))
    frames_when_full = counter.frame_count
    for i in range(4, 10):
        step(*_batch(2 * i, 2))
    assert counter.frame_count <= frames_when_full + 2  # at most the one switch to "full"
    assert q.contents()[1].tolist() == [16, 17, 18, 19, 12, 13, 14, 15]
    torch._dynamo.reset()
