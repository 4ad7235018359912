"""The evaluation tasks, by name: the region-level tasks of ASMv2 and the general benchmarks of its results table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from allseeing.eval.task import Task
from allseeing.eval.tasks import judged, mmbench, vqa
from allseeing.eval.tasks.crpe import Crpe
from allseeing.eval.tasks.gqa import Gqa
from allseeing.eval.tasks.grounding import Grounding
from allseeing.eval.tasks.judged import LlavaWild, MmVet
from allseeing.eval.tasks.mmbench import Mmbench, MmbenchCn
from allseeing.eval.tasks.mme import Mme
from allseeing.eval.tasks.pope import Pope
from allseeing.eval.tasks.psg import Psg
from allseeing.eval.tasks.psg_pred_cls import PsgPredCls
from allseeing.eval.tasks.region_caption import RegionCaption
from allseeing.eval.tasks.seed import Seed
from allseeing.eval.tasks.sqa import ScienceQaImg
from allseeing.eval.tasks.textvqa import TextVqa
from allseeing.eval.tasks.vcr import Vcr
from allseeing.eval.tasks.vqa import VizWiz, Vqav2

REGION_TASKS: tuple[Task, ...] = (Crpe(), Grounding(), RegionCaption(), Vcr(), Psg(), PsgPredCls())
# In the order of the seed's results table.
GENERAL_TASKS: tuple[Task, ...] = (
    Vqav2(),
    Gqa(),
    VizWiz(),
    ScienceQaImg(),
    TextVqa(),
    Pope(),
    Mme(),
    Mmbench(),
    MmbenchCn(),
    Seed(),
    LlavaWild(),
    MmVet(),
)
TASKS: dict[str, Task] = {task.name: task for task in (*REGION_TASKS, *GENERAL_TASKS)}
# The benchmarks whose official score is computed by a server: the file it takes, from (task name, questions,
# predictions by question id, path); ``allseeing eval submit``.
SUBMISSIONS: dict[str, Callable[[str, list[dict], dict[str, dict], Path], object]] = {
    "vqav2": vqa.write_submission,
    "vizwiz": vqa.write_submission,
    "mmbench": mmbench.write_submission,
    "mmbench_cn": mmbench.write_submission,
    "mmvet": judged.write_submission,
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
