"""The judged benchmarks: LLaVA-Bench (in the wild) (``llava_wild``) and MM-Vet (``mmvet``).

Both are asked as upstream's ``llava/eval/model_vqa.py`` asks them (``<image>\\n`` + the question's ``text``, 1024
new tokens) and scored by a judge model served behind an OpenAI-compatible API (``ScoreContext.options["judge"]``,
an :class:`~allseeing.infer.openai_client.Endpoint`; ``eval score --judge-base-url --judge-model``). The prompts and
the arithmetic are in :mod:`allseeing.eval.metrics.judge`.

Every reply of the judge is appended to a JSONL log (``options["judge_log"]``) keyed by a hash of the exact request
(judge model, messages, token budget, temperature): a re-run, the other protocol or a suite run asks only what the
log does not hold, so no judgment is paid for twice. The API key travels only in the client's header, never into the
log or the scores.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import TypeVar

from allseeing.eval.metrics.judge import (
    LLAVA_MAX_TOKENS,
    MMVET_MAX_TOKENS,
    MMVET_TEMPERATURES,
    capability_scores,
    llava_categories,
    llava_review_messages,
    mmvet_messages,
    parse_correctness,
    parse_score_pair,
    relative_scores,
)
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, read_json, require, require_all
from allseeing.eval.tasks.common import SingleTurnTask
from allseeing.infer.openai_client import ChatClient, Endpoint

T = TypeVar("T")


def read_records(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file (annotation files have no ``question_id`` to check)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as error:
        raise EvalError(f"cannot read {path}: {error}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise EvalError(f"{path}:{number}: not JSON: {error}") from None
    return records


class JudgeLog:
    """The judge's replies, one JSON line per request, read back on the next run. ``path`` None: kept in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.replies: dict[str, str] = {}
        self.lock = threading.Lock()
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        lines = path.read_text(encoding="utf-8").split("\n")
        last = lines.pop()  # what follows the last newline: nothing, unless a run was killed while writing
        if last.strip():
            try:
                json.loads(last)
                lines.append(last)
            except ValueError:
                pass  # a record cut short: its request is asked again
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")  # appends start a new line
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.replies[record["key"]] = record["reply"]
            except (ValueError, KeyError, TypeError):
                raise EvalError(f"{path}:{number}: not a judge log record") from None

    def add(self, record: dict) -> None:
        with self.lock:
            self.replies[record["key"]] = record["reply"]
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(record, ensure_ascii=False) + "\n")


class Judge:
    """Asks the judge model, through the log; the client starts only when a request must be sent."""

    def __init__(self, endpoint: Endpoint, log_path: Path | None, task: str) -> None:
        self.endpoint = endpoint
        self.task = task
        self.log = JudgeLog(log_path)
        self.new = self.reused = 0
        self._client: ChatClient | None = None
        self._lock = threading.Lock()

    def client(self) -> ChatClient:
        with self._lock:
            if self._client is None:
                try:
                    self._client = ChatClient(self.endpoint)
                except ValueError:  # the key's variable is not set; the message names the predict option
                    raise EvalError(
                        f"--judge-api-key-env {self.endpoint.api_key_env}: that environment variable is not set"
                    ) from None
            return self._client

    def ask(self, question_id: str, messages: list[dict], max_tokens: int, temperature: float = 0.0) -> str:
        """The judge's reply to ``messages``: from the log when this exact request was answered before."""
        request = {
            "model": self.endpoint.served_model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        digest = hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        found = self.log.replies.get(digest)
        if found is not None:
            with self._lock:
                self.reused += 1
            return found
        what = f"the judge's review of {self.task} question {question_id!r}"
        reply = self.client().complete(messages, max_tokens, what, temperature=temperature)
        self.log.add(
            {
                "key": digest,
                "task": self.task,
                "question_id": question_id,
                "judge_model": self.endpoint.served_model,
                "temperature": temperature,
                "reply": reply,
            }
        )
        with self._lock:
            self.new += 1
        return reply

    def run(self, jobs: list[Callable[[], T]]) -> list[T]:
        """Every job's result, in order, at most ``concurrency`` at once. When one fails, no other starts; those
        under way finish (their replies are logged) and the first failure is raised."""
        with ThreadPoolExecutor(self.endpoint.concurrency) as pool:
            futures = [pool.submit(job) for job in jobs]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()
        return [future.result() for future in futures]

    def record(self) -> dict:
        """What the scores say about the judging: the judge model, new and reused replies, the log."""
        return {
            "model": self.endpoint.served_model,
            "new": self.new,
            "reused": self.reused,
            "log": str(self.log.path) if self.log.path is not None else None,
        }


def judge_for(context: ScoreContext, task: str) -> Judge:
    endpoint = context.options.get("judge")
    if endpoint is None:
        raise EvalError(
            f"{task} is scored by a judge model: give --judge-base-url and --judge-model (in a suite: judge_base_url "
            "and judge_model)"
        )
    log = context.options.get("judge_log")
    return Judge(endpoint, Path(log) if log is not None else None, task)


def annotations(context: ScoreContext) -> Path | None:
    given = context.options.get("annotations")
    return Path(given) if given else None


class LlavaWild(SingleTurnTask):
    """LLaVA-Bench (in the wild): ``questions.jsonl`` ({question_id, image, text, category}).

    Truth: ``--annotations`` names the benchmark's folder (or a file in it) holding ``context.jsonl`` ({image,
    caption}) and ``answers_gpt4.jsonl`` (the reference answers, {question_id, text}); without it, every question
    carries ``caption`` and ``answer``.

    Keys: ``overall`` and one per category (``complex``, ``conv``, ``detail``): the relative score;
    ``reference_score`` and ``model_score`` (the mean judge scores * 10, per key); ``judged`` (reviews counted),
    ``unjudged`` (reviews whose first line is not two scores); ``judge``.

    ``official`` reviews the answered questions, in question-file order; ``fixed`` every question, an unanswered one
    as an empty answer. See :func:`~allseeing.eval.metrics.judge.relative_scores` for the arithmetic.
    """

    name = "llava_wild"
    max_new_tokens = 1024  # model_vqa's max_new_tokens
    fields = ("question_id", "image", "text", "category")
    needs_judge = True

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        unknown = sorted({str(q["category"]) for q in questions} - set(llava_categories()))
        if unknown:
            raise EvalError(
                f"{context.questions_path}: categories {unknown} have no review rule; known: "
                f"{', '.join(llava_categories())}"
            )
        truth = self.truth(questions, context)
        official = context.protocol == "official"
        rows = [q for q in questions if not official or key(q["question_id"]) in predictions]
        judge = judge_for(context, self.name)

        def review(question: dict) -> str:
            question_id = key(question["question_id"])
            caption, reference = truth[question_id]
            answer = answer_text(predictions.get(question_id)) or ""
            messages = llava_review_messages(caption, question["text"], reference, answer, question["category"])
            return judge.ask(question_id, messages, LLAVA_MAX_TOKENS)

        reviews = judge.run([partial(review, question) for question in rows])
        pairs = [(q["category"], parse_score_pair(text, official)) for q, text in zip(rows, reviews, strict=True)]
        return {
            **relative_scores(pairs, official),
            "judged": len(pairs),
            "unjudged": sum(pair is None for _, pair in pairs),
            "judge": judge.record(),
            **bookkeeping(questions, predictions, 0, context.protocol),
        }

    def truth(self, questions: list[dict], context: ScoreContext) -> dict[str, tuple[str | list[str], str]]:
        """(caption, reference answer) by question id."""
        given = annotations(context)
        if given is None:
            for question in questions:
                if "caption" not in question or "answer" not in question:
                    raise EvalError(
                        f"{context.questions_path}: question {question['question_id']!r} lacks caption or answer, "
                        "and no --annotations (LLaVA-Bench's folder with context.jsonl and answers_gpt4.jsonl) "
                        "were given"
                    )
            return {key(q["question_id"]): (q["caption"], q["answer"]) for q in questions}
        folder = given if given.is_dir() else given.parent
        contexts = {}
        for record in read_records(folder / "context.jsonl"):
            require(record, ("image", "caption"), folder / "context.jsonl")
            contexts[record["image"]] = record["caption"]
        references = {}
        for record in read_records(folder / "answers_gpt4.jsonl"):
            require(record, ("question_id", "text"), folder / "answers_gpt4.jsonl")
            references[key(record["question_id"])] = record["text"]
        truth = {}
        for question in questions:
            question_id = key(question["question_id"])
            if question["image"] not in contexts:
                image = question["image"]
                raise EvalError(f"{folder / 'context.jsonl'}: no caption of image {image!r} (question {question_id!r})")
            if question_id not in references:
                raise EvalError(f"{folder / 'answers_gpt4.jsonl'}: no reference answer to question {question_id!r}")
            truth[question_id] = (contexts[question["image"]], references[question_id])
        return truth


class MmVet(SingleTurnTask):
    """MM-Vet: ``llava-mm-vet.jsonl`` ({question_id, image, text}).

    Truth: ``--annotations`` names ``mm-vet.json`` (or its folder): {"v1_<question_id>": {question, answer,
    capability: [...]}}, the question text judged being that file's; without it, every question carries ``answer``
    and ``capability`` (and its ``text`` is judged).

    Keys: ``total``, ``capabilities`` (rec, ocr, know, gen, spat, math), ``combinations`` (capabilities joined by
    "_", sorted); ``unjudged`` (questions whose replies were never a score, scored 0.0 as the grader does);
    ``judge``. Both protocols score every question, an unanswered one 0.0 without asking (the grader's denominators
    are every question; it cannot grade a partial file). ``official`` adds the scores in the grader's order, that
    of mm-vet.json (of the question file when the truth is in it); see
    :func:`~allseeing.eval.metrics.judge.capability_scores` for the arithmetic.
    """

    name = "mmvet"
    max_new_tokens = 1024  # model_vqa's max_new_tokens
    fields = ("question_id", "image", "text")
    needs_judge = True

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        rows = self.truth(questions, context)
        official = context.protocol == "official"
        judge = judge_for(context, self.name)

        def grade(question_id: str, question: str, answer: str, prediction: str | None) -> float | None:
            """The grader's score, or None when no reply was one (the grader then scores 0.0)."""
            if prediction is None:
                return 0.0
            for attempt, temperature in enumerate(MMVET_TEMPERATURES):
                messages = mmvet_messages(question, answer, prediction, again=attempt > 0)
                score = parse_correctness(judge.ask(question_id, messages, MMVET_MAX_TOKENS, temperature), official)
                if score is not None:
                    return score
            return None

        scores = judge.run([partial(grade, *row[:3], answer_text(predictions.get(row[0]))) for row in rows])
        graded = [(row[3], 0.0 if score is None else score) for row, score in zip(rows, scores, strict=True)]
        return {
            **capability_scores(graded, official),
            "unjudged": sum(score is None for score in scores),
            "judge": judge.record(),
            **bookkeeping(questions, predictions, 0, context.protocol),
        }

    def truth(self, questions: list[dict], context: ScoreContext) -> list[tuple[str, str, str, list[str]]]:
        """(question id, question text, ground truth, capabilities) per question, in mm-vet.json's order."""
        given = annotations(context)
        if given is None:
            rows = []
            for question in questions:
                if "answer" not in question or "capability" not in question:
                    raise EvalError(
                        f"{context.questions_path}: question {question['question_id']!r} lacks answer or "
                        "capability, and no --annotations (MM-Vet's mm-vet.json) were given"
                    )
                rows.append(self.row(question, question["text"], context.questions_path))
            return rows
        path = given / "mm-vet.json" if given.is_dir() else given
        data = read_json(path)
        if not isinstance(data, dict):
            raise EvalError(f"{path}: expected an object of questions by id (v1_0, ...)")
        order = {name: index for index, name in enumerate(data)}
        rows = []
        for question in questions:
            name = f"v1_{question['question_id']}"  # as convert_mmvet_for_eval.py names them
            entry = data.get(name)
            if not isinstance(entry, dict) or "question" not in entry:
                raise EvalError(f"{path}: no {name} (question {key(question['question_id'])!r})")
            rows.append(self.row({**entry, "question_id": question["question_id"]}, entry["question"], path))
        return sorted(rows, key=lambda row: order[f"v1_{row[0]}"])

    @staticmethod
    def row(truth: dict, question: str, path: Path) -> tuple[str, str, str, list[str]]:
        require(truth, ("answer", "capability"), path)
        capabilities = truth["capability"]
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            raise EvalError(f"{path}: question {truth['question_id']!r}: capability is not a list of names")
        if not isinstance(truth["answer"], str):
            raise EvalError(f"{path}: question {truth['question_id']!r}: answer is not text")
        return key(truth["question_id"]), question, truth["answer"], capabilities


def write_submission(task_name: str, questions: list[dict], predictions: dict[str, dict], out_path: str | Path) -> Path:
    """MM-Vet's results file for its grader (the online evaluator or ``mm-vet_evaluator.py``), as upstream's
    ``scripts/convert_mmvet_for_eval.py`` writes it: {"v1_<question_id>": answer text}, indented by 2. Every
    question must be answered (``predictions`` by question id: once each), with text, and nothing else answered."""
    if task_name != MmVet.name:
        raise EvalError(f"{task_name} has no submission file here")
    asked = [key(q["question_id"]) for q in questions]
    answers: dict[str, str] = {}
    for question_id, prediction in predictions.items():
        if not isinstance(prediction.get("text"), str):
            raise EvalError(f"{task_name}: the answer to question {question_id!r} is not text")
        answers[question_id] = prediction["text"]
    strangers = sorted(set(answers) - set(asked))
    missing = [question_id for question_id in asked if question_id not in answers]
    if strangers or missing:
        raise EvalError(
            f"{task_name}: a submission answers every question once: {len(missing)} unanswered (e.g. "
            f"{missing[:3]}), {len(strangers)} not asked (e.g. {strangers[:3]})"
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({f"v1_{q}": answers[q] for q in asked}, indent=2) + "\n", encoding="utf-8")
    return out
