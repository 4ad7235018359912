"""The evaluation tasks, by name."""

from __future__ import annotations

from allseeing.eval.task import Task
from allseeing.eval.tasks.crpe import Crpe
from allseeing.eval.tasks.grounding import Grounding
from allseeing.eval.tasks.psg import Psg
from allseeing.eval.tasks.psg_pred_cls import PsgPredCls
from allseeing.eval.tasks.region_caption import RegionCaption
from allseeing.eval.tasks.vcr import Vcr

TASKS: dict[str, Task] = {
    task.name: task for task in (Crpe(), Grounding(), RegionCaption(), Vcr(), Psg(), PsgPredCls())
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
