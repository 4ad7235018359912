"""The process group: joined under torchrun for a run, and left at its end only by the run that joined it."""

import pytest

from tests.conftest import on_two_processes

JOINED_HERE = """
import torch.distributed as dist
from allseeing.train.distributed import process_group

with process_group() as (rank, world):
    assert dist.is_initialized() and world == 2 and rank == dist.get_rank()
assert not dist.is_initialized(), "the group it joined is still there"
"""

THE_CALLERS = """
import torch.distributed as dist
from allseeing.train.distributed import process_group

dist.init_process_group("gloo")
with process_group() as (rank, world):
    assert world == 2
assert dist.is_initialized(), "it left a group it had not joined"
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize("script", [JOINED_HERE, THE_CALLERS], ids=["joined-here", "the-callers"])
def test_a_run_leaves_the_process_group_it_joined_and_only_that(script, tmp_path):
    path = tmp_path / "group.py"
    path.write_text(script)
    on_two_processes(str(path))
