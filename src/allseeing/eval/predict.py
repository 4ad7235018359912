"""Answering a question file with a model (``allseeing predict``): batched, resumable, shardable.

- Resumable: question ids already in the output are skipped; an incomplete last line (a run killed while writing)
  is removed first, a complete one missing its newline is terminated. Lines are appended and flushed as soon as a
  batch is done. A file holds one run's answers: resuming it with another model or other decoding settings is
  an error naming both.
- Shardable: under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) rank r answers questions r, r + W, ... into
  ``OUT.rank<r>-of-<W>``; after a barrier, rank 0 merges the shards into OUT, in question order, and checks that
  every question was answered exactly once.
- Provenance on every line: the model folder, template, decoding settings and allseeing version.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from allseeing import __version__
from allseeing.data.image import load_image
from allseeing.eval.registry import get_task
from allseeing.eval.task import Ask, EvalError, lacking, read_questions
from allseeing.infer.generate import DecodingConfig, Request, generate
from allseeing.infer.rank import rank_options
from allseeing.model.build import load


def shard_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when run directly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def answered(path: Path) -> dict[str, dict]:
    """The provenance (``metadata``) of each question already answered in a predictions file, by question id.

    Repairs what a killed run leaves at the end: an incomplete last line is removed; a complete last line whose
    newline was not written yet is terminated, so the next answer does not glue onto it.
    """
    if not path.exists():
        return {}
    # Lines end at "\n" only (see read_jsonl); each keeps its end, so the file can be rewritten as it was.
    lines = path.read_text(encoding="utf-8").split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    found, good = {}, []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            found[str(record["question_id"])] = record.get("metadata") or {}
            good.append(line)
        except (ValueError, KeyError, TypeError):
            if number != len(lines):
                raise EvalError(f"{path}:{number}: a broken line before the end; not resuming over it") from None
            path.write_text("".join(good), encoding="utf-8")  # the interrupted last line
    if good and not good[-1].endswith("\n"):
        with path.open("a", encoding="utf-8") as out:
            out.write("\n")
    return found


# What makes two runs' answers different (the template comes with the model); the batch size, dtype and version
# may change between resumed runs.
_SAME_RUN = ("model", "decoding")


def check_same_run(path: Path, done: dict[str, dict], provenance: dict) -> None:
    """Refuse to append this run's answers to a file that holds another model's or other decoding's."""

    def identity(metadata: dict) -> dict:
        found = {name: metadata.get(name) for name in _SAME_RUN}
        if isinstance(found["model"], str):  # files written before paths were recorded resolved
            found["model"] = str(Path(found["model"]).resolve())
        if isinstance(found["decoding"], dict):
            found["decoding"] = {k: v for k, v in found["decoding"].items() if k != "batch_size"}
        return found

    mine = identity(provenance)
    for question_id, metadata in done.items():
        theirs = identity(metadata)
        if theirs != mine:
            differ = [name for name in _SAME_RUN if theirs[name] != mine[name]]
            raise EvalError(
                f"{path} holds answers of another run (question {question_id!r}: "
                + "; ".join(f"{name} {theirs[name]} there, {mine[name]} now" for name in differ)
                + "): write to another --out"
            )


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to answer, loaded once for several question files (``eval run``)."""

    folder: Path
    model: Any
    processor: Any
    dtype: torch.dtype


def load_for_prediction(model_dir: str | Path) -> LoadedModel:
    """The model in ``model_dir`` as evaluation runs it: fp16 on a GPU, one card per rank, as upstream evaluated;
    fp32 on a CPU."""
    dtype = torch.float16 if torch.cuda.is_available() else torch.float32
    model, processor = load(model_dir, dtype=dtype)
    if torch.cuda.is_available():
        model = model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return LoadedModel(Path(model_dir), model, processor, dtype)


def _warn_if_unscorable(questions: list[dict], task, path: Path) -> None:
    """Say at once, before the model loads, when the answers could not be scored as ``task`` (another task's file,
    or one without ground truth, which is fine to predict on)."""
    for question in questions:
        missing = lacking(question, task.fields)
        if missing:
            print(
                f"allseeing predict: warning: {path}: question {question.get('question_id')!r} lacks "
                f"{', '.join(missing)}: its answers cannot be scored as {task.name}",
                file=sys.stderr,
                flush=True,
            )
            return


def predict(
    task_name: str,
    model_dir: str | Path,
    questions_path: str | Path,
    image_root: str | Path,
    out_path: str | Path,
    *,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    options_path: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    loaded: LoadedModel | None = None,
) -> dict:
    """Answer the questions not yet answered in ``out_path``; returns counts. ``loaded``: the model of
    ``model_dir`` already loaded (by :func:`load_for_prediction`), else it is loaded here, after the output file
    was checked to hold this run's answers only."""
    task = get_task(task_name)
    questions_path, image_root, out_path = Path(questions_path), Path(image_root), Path(out_path)
    questions = read_questions(questions_path)[:limit]
    asks = task.asks(questions, questions_path, {"options_file": options_path})
    _warn_if_unscorable(questions, task, questions_path)
    rank, world = shard_info()
    target = out_path if world == 1 else out_path.with_name(f"{out_path.name}.rank{rank}-of-{world}")
    target.parent.mkdir(parents=True, exist_ok=True)
    done = answered(target)
    todo = [ask for ask in asks[rank::world] if ask.question_id not in done]

    decoding = DecodingConfig(max_new_tokens=max_new_tokens or task.max_new_tokens, batch_size=batch_size)
    run = {
        "model": str(Path(model_dir).resolve()),
        "decoding": asdict(decoding) if not task.ranks_options else {"ranking": "log-likelihood"},
    }
    check_same_run(target, done, run)
    if loaded is None:
        loaded = load_for_prediction(model_dir)
    elif loaded.folder.resolve() != Path(model_dir).resolve():
        raise ValueError(f"the model loaded is {loaded.folder}, not {model_dir}")
    model, processor = loaded.model, loaded.processor
    provenance = {
        "model": run["model"],
        "template": processor.config.template,
        "dtype": str(loaded.dtype).removeprefix("torch."),
        "decoding": run["decoding"],
        "allseeing": __version__,
    }
    model_id = Path(model_dir).name
    with (
        target.open("a", encoding="utf-8") as out,
        tqdm(total=len(todo), desc=f"predict {task_name}", disable=not progress) as bar,
    ):
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            for record in _answer(task.ranks_options, model, processor, batch, image_root, decoding):
                out.write(
                    json.dumps({**record, "model_id": model_id, "metadata": provenance}, ensure_ascii=False) + "\n"
                )
            out.flush()
            bar.update(len(batch))
    if world > 1:
        _merge_shards(out_path, [str(a.question_id) for a in asks], rank, world)
    return {
        "task": task_name,
        "questions": len(asks),
        "answered_now": len(todo),
        "already_answered": len(done),
        "out": str(out_path),
    }


def _answer(ranks: bool, model, processor, batch: list[Ask], image_root: Path, decoding: DecodingConfig) -> list[dict]:
    # Benchmarks read pixels as upstream's evaluation did: transparency discarded, not composited on white.
    images = [load_image(image_root / ask.image, transparency="discard") if ask.image else None for ask in batch]
    prompts = [processor.template.render(list(ask.turns)) for ask in batch]
    if ranks:
        records = []
        for ask, image, prompt in zip(batch, images, prompts, strict=True):
            scores = sorted(
                rank_options(model, processor, image, ask.turns, ask.options, ask.label_format),
                key=lambda s: -s.upstream_score,
            )
            records.append(
                {
                    "question_id": ask.question_id,
                    "prompt": prompt,
                    "text": [s.option for s in scores],
                    "scores": [round(s.upstream_score, 6) for s in scores],
                    "sum_logprobs": [round(s.sum_logprob, 6) for s in scores],
                }
            )
        return records
    generations = generate(
        model,
        processor,
        [Request(image, ask.turns) for ask, image in zip(batch, images, strict=True)],
        decoding,
        fit_context=True,
    )
    return [
        {"question_id": ask.question_id, "prompt": prompt, "text": generation.text}
        for ask, prompt, generation in zip(batch, prompts, generations, strict=True)
    ]


def _merge_shards(out_path: Path, question_ids: list[str], rank: int, world: int) -> None:
    """After every rank has finished, rank 0 writes the shards into one file in question order, complete."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()
    if rank == 0:
        records: dict[str, str] = {}
        for r in range(world):
            shard = out_path.with_name(f"{out_path.name}.rank{r}-of-{world}")
            for line in filter(None, shard.read_text(encoding="utf-8").split("\n")):
                question_id = str(json.loads(line)["question_id"])
                if question_id in records:
                    raise EvalError(f"{shard}: question {question_id!r} answered twice across shards")
                records[question_id] = line
        missing = [q for q in question_ids if q not in records]
        if missing:
            raise EvalError(f"the shards of {out_path} miss {len(missing)} questions, e.g. {missing[:3]}")
        out_path.write_text("".join(records[q] + "\n" for q in question_ids), encoding="utf-8")
    dist.barrier()
