import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Tests read the real datasets; default to the shared copies beside the repository.
if not os.environ.get("S30_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["S30_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def has_dataset(name: str) -> bool:
    from sutskever30.data import get_dataset

    return get_dataset(name).find() is not None
