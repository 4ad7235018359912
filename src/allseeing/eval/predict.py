"""Answering a question file with a model (``allseeing predict``): batched, resumable, shardable.

The model runs in-process, or is served behind an OpenAI-compatible API (:mod:`allseeing.eval.answerers`); the
output file, resuming and provenance are the same for both.

- Resumable: question ids already in the output are skipped; an incomplete last line (a run killed while writing)
  is removed first, a complete one missing its newline is terminated. Lines are appended and flushed as soon as a
  batch is done. A file holds one run's answers: resuming it with another model or other decoding settings is
  an error naming both.
- Shardable: under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) rank r answers questions r, r + W, ... into
  ``OUT.rank<r>-of-<W>``; after a barrier, rank 0 merges the shards into OUT, in question order, and checks that
  every question was answered exactly once.
- Provenance on every line: the backend, the model folder (or served model and its servers), template, decoding
  settings and allseeing version.
- In question order: answers that arrive out of order (a served model answers several at once) are put in the
  questions' order once the file is complete, as upstream's scorers read some tasks by position.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from allseeing.eval.answerers import Answerer, LoadedModel, LocalAnswerer, ServedAnswerer
from allseeing.eval.registry import get_task
from allseeing.eval.task import EvalError, lacking
from allseeing.infer.openai_client import Endpoint


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


# What makes two runs' answers different (the template comes with the model; the task's settings change the
# prompt: MMBench's instruction language, the options of predicate classification); the batch size, dtype, servers
# and version may change between resumed runs.
_SAME_RUN = ("backend", "model", "decoding", "settings")


def check_same_run(path: Path, done: dict[str, dict], run: dict) -> None:
    """Refuse to append this run's answers to a file that holds another model's or other decoding's."""

    def identity(metadata: dict) -> dict:
        found = {name: metadata.get(name) for name in _SAME_RUN}
        found["backend"] = found["backend"] or "local"  # lines written before there were backends
        if found["backend"] == "local" and isinstance(found["model"], str):  # paths before they were resolved
            found["model"] = str(Path(found["model"]).resolve())
        if isinstance(found["decoding"], dict):
            found["decoding"] = {k: v for k, v in found["decoding"].items() if k != "batch_size"}
        return found

    mine = identity(run)
    for question_id, metadata in done.items():
        theirs = identity(metadata)
        if theirs != mine:
            differ = [name for name in _SAME_RUN if theirs[name] != mine[name]]
            raise EvalError(
                f"{path} holds answers of another run (question {question_id!r}: "
                + "; ".join(f"{name} {theirs[name]} there, {mine[name]} now" for name in differ)
                + "): write to another --out"
            )


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
    model: str | Path | Endpoint,
    questions_path: str | Path,
    image_root: str | Path,
    out_path: str | Path,
    *,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    options_path: str | Path | None = None,
    lang: str | None = None,
    limit: int | None = None,
    progress: bool = True,
    loaded: LoadedModel | None = None,
) -> dict:
    """Answer the questions not yet answered in ``out_path``; returns counts.

    ``model``: a model folder, run in-process (``loaded``: that model already loaded by
    :func:`~allseeing.eval.answerers.load_for_prediction`, else it loads here, after the output file was checked to
    hold this run's answers only), or the :class:`Endpoint` of a served model. ``options_path`` (psg_pred_cls) and
    ``lang`` (MMBench's instruction) are the task's settings.
    """
    task = get_task(task_name)
    questions_path, image_root, out_path = Path(questions_path), Path(image_root), Path(out_path)
    settings = {"options_file": str(Path(options_path).resolve()) if options_path else None, "lang": lang}
    settings = {name: value for name, value in settings.items() if value is not None}
    budget = max_new_tokens or task.max_new_tokens
    answerer: Answerer
    if isinstance(model, Endpoint):
        answerer = ServedAnswerer(model, task, max_new_tokens=budget, settings=settings)
    else:
        answerer = LocalAnswerer(
            model, task, max_new_tokens=budget, batch_size=batch_size, loaded=loaded, settings=settings
        )
    questions = task.read_questions(questions_path)[:limit]
    asks = task.asks(questions, questions_path, settings)
    _warn_if_unscorable(questions, task, questions_path)
    rank, world = shard_info()
    target = out_path if world == 1 else out_path.with_name(f"{out_path.name}.rank{rank}-of-{world}")
    target.parent.mkdir(parents=True, exist_ok=True)
    done = answered(target)
    todo = [ask for ask in asks[rank::world] if ask.question_id not in done]
    check_same_run(target, done, answerer.run)
    provenance = answerer.provenance() if todo else {}
    with (
        target.open("a", encoding="utf-8") as out,
        tqdm(total=len(todo), desc=f"predict {task_name}", disable=not progress) as bar,
    ):
        for record in answerer.answer(todo, image_root):
            line = {**record, "model_id": answerer.model_id, "metadata": provenance}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(1)
    if world > 1:
        _merge_shards(out_path, [str(a.question_id) for a in asks], rank, world)
    else:
        _in_question_order(out_path, [str(a.question_id) for a in asks])
    summary = {
        "task": task_name,
        "questions": len(asks),
        "answered_now": len(todo),
        "already_answered": len(done),
        "out": str(out_path),
    }
    if isinstance(answerer, ServedAnswerer):
        summary["requests"] = answerer.requests  # retries included
    return summary


def _in_question_order(path: Path, question_ids: list[str]) -> None:
    """Rewrite a complete predictions file whose lines are out of question order (atomically: a temporary file,
    then renamed); a file in order, or not complete, is left as it is."""
    if not path.exists():
        return
    lines = [line for line in path.read_text(encoding="utf-8").split("\n") if line]
    by_id = {str(json.loads(line)["question_id"]): line for line in lines}
    found = list(by_id)
    if len(lines) != len(question_ids) or found == question_ids or set(found) != set(question_ids):
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(by_id[q] + "\n" for q in question_ids), encoding="utf-8")
    os.replace(partial, path)


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
