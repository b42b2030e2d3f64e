import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """For modules of many tiny ops: intra-op threads only add overhead (up to 10x on 2 busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
