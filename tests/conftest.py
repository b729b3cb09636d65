"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Torch on one CPU thread for the test (fixed numbers, no oversubscription), restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
