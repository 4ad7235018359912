"""Evaluation suites (``allseeing eval run``): predict and score several tasks, write report.json and report.md.

A suite is YAML: ``model``, ``image_root``, ``out``, ``protocols`` (default both), ``batch_size`` and ``tasks``,
each ``{name, task, questions, [max_new_tokens], [options], [box_format], [annotations]}``. Paths are relative to
the current directory. Predictions go to ``<out>/<name>.jsonl`` and resume when a run is repeated. A judged task
(llava_wild, mmvet) also names its judge: ``judge_base_url``, ``judge_model``, [``judge_api_key_env``],
[``judge_concurrency``]; the judge's replies go to ``<out>/<name>.judge.jsonl`` and are reused.
``backend: openai`` asks a served model instead, with the keys of ``allseeing predict``'s options: ``base_url`` (a
list), ``served_model``, ``api_key_env``, ``concurrency``, ``timeout``, ``max_retries``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from allseeing.assets import BUNDLED_MODEL
from allseeing.config import ConfigError, load_config
from allseeing.eval.metrics.boxformat import BOX_FORMATS
from allseeing.eval.registry import TASKS, get_task
from allseeing.eval.task import PROTOCOLS
from allseeing.infer.openai_client import Endpoint

# The columns of the report table per task (the headline numbers of the seed README).
HEADLINES = {
    "crpe": ("exist", "subject", "predicate", "object", "overall"),
    "vcr": ("q2a", "qa2r", "q2ar"),
    "psg": ("num_pred_tuples", "recall", "mean_recall"),
    "psg_pred_cls": ("recall@20", "recall@50", "recall@100", "mean_recall@100"),
    "vqav2": ("accuracy",),
    "gqa": ("accuracy", "binary", "open"),
    "vizwiz": ("accuracy",),
    "sqa_img": ("img", "accuracy"),
    "textvqa": ("accuracy",),
    "pope": ("f1", "accuracy"),
    "mme": ("perception", "cognition"),
    "mmbench": ("overall", "vanilla"),
    "mmbench_cn": ("overall", "vanilla"),
    "seed": ("accuracy", "image"),
    "llava_wild": ("overall", "conv", "detail", "complex"),
    "mmvet": (
        "total",
        "capabilities/rec",
        "capabilities/ocr",
        "capabilities/know",
        "capabilities/gen",
        "capabilities/spat",
        "capabilities/math",
    ),
}


# The general benchmarks' headline metric and the seed's published ASMv2 number for it (the README's results table;
# VQAv2, GQA and SQA-IMG are marked there as benchmarks whose training images the model saw). MME: perception.
PUBLISHED_ASMV2 = {
    "vqav2": ("accuracy", 81.0),
    "gqa": ("accuracy", 63.9),
    "vizwiz": ("accuracy", 58.1),
    "sqa_img": ("img", 87.1),
    "textvqa": ("accuracy", 60.2),
    "pope": ("f1", 86.3),
    "mme": ("perception", 1621.0),
    "mmbench": ("overall", 74.4),
    "mmbench_cn": ("overall", 64.3),
    "seed": ("accuracy", 66.3),
    "llava_wild": ("overall", 78.9),
    "mmvet": ("total", 41.3),
}
NO_JUDGE = "predicted, not scored: a judge model scores this benchmark (judge_base_url and judge_model)"


@dataclass
class SuiteTask:
    """One task of a suite: predictions go to ``<out>/<name>.jsonl``."""

    name: str
    task: str
    questions: str
    max_new_tokens: int | None = None
    options: str | None = None  # psg_pred_cls: the options file (default: next to the questions)
    box_format: str = "square999"
    annotations: str | None = None  # the benchmark's ground truth, where the question file has none (eval score)
    lang: str | None = None  # mmbench, mmbench_cn: the instruction's language (en, cn)
    # The judge model of a judged benchmark (llava_wild, mmvet), served behind an OpenAI-compatible API; its replies
    # are logged to <out>/<name>.judge.jsonl and reused.
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str | None = None  # the environment variable holding the judge's API key (never the key)
    judge_concurrency: int = 4

    def check(self) -> SuiteTask:
        if self.task not in TASKS:
            raise ConfigError(f"task {self.name!r}: unknown task {self.task!r}; known: {', '.join(TASKS)}")
        if self.box_format not in BOX_FORMATS:
            raise ConfigError(f"task {self.name!r}: unknown box format {self.box_format!r}")
        if self.lang not in (None, "en", "cn"):
            raise ConfigError(f"task {self.name!r}: lang {self.lang!r} is not en or cn")
        try:
            self.judge()
        except ValueError as error:
            raise ConfigError(f"task {self.name!r}: the judge: {error}") from None
        return self

    def judge(self) -> Endpoint | None:
        """The judge model's endpoint; None when the task names none."""
        if not self.judge_base_url and not self.judge_model:
            return None
        return Endpoint(
            base_urls=(self.judge_base_url or "",),
            served_model=self.judge_model or "",
            api_key_env=self.judge_api_key_env,
            concurrency=self.judge_concurrency,
        )

    def score_options(self, predictions: Path) -> dict | None:
        """The options ``score_file`` needs: annotations, the judge and its log (beside the predictions)."""
        options: dict = {"annotations": self.annotations} if self.annotations else {}
        judge = self.judge()
        if judge is not None:
            options.update(judge=judge, judge_log=str(predictions.with_name(f"{self.name}.judge.jsonl")))
        return options or None


@dataclass
class Suite:
    image_root: str
    out: str
    tasks: list[SuiteTask]
    model: str | None = None  # a folder run in-process (None: the bundled small model)
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    batch_size: int = 8
    backend: str = "local"  # or openai: a served model (the keys below)
    base_url: list[str] = field(default_factory=list)
    served_model: str | None = None
    api_key_env: str | None = None
    concurrency: int = 4
    timeout: float = 600.0
    max_retries: int = 5

    def endpoint(self) -> Endpoint | None:
        """The served model with ``backend: openai``; None in-process."""
        if self.backend == "local":
            return None
        return Endpoint(
            base_urls=tuple(self.base_url),
            served_model=self.served_model or "",
            api_key_env=self.api_key_env,
            concurrency=self.concurrency,
            timeout_s=self.timeout,
            max_retries=self.max_retries,
        )

    def check(self) -> Suite:
        if not self.protocols:
            raise ConfigError("protocols: name at least one of " + ", ".join(PROTOCOLS))
        if self.backend not in ("local", "openai"):
            raise ConfigError(f"backend: {self.backend!r} is not local or openai")
        if self.backend == "openai" and self.model:
            raise ConfigError("model: a folder run in-process; with backend: openai name served_model instead")
        try:
            self.endpoint()
        except ValueError as error:
            raise ConfigError(f"backend openai: {error}") from None
        ranked = [task.name for task in self.tasks if get_task(task.task).ranks_options]
        if self.backend == "openai" and ranked:
            raise ConfigError(
                f"tasks {ranked}: ranking options needs log-likelihoods, which a served model does not give"
            )
        unknown = sorted(set(self.protocols) - set(PROTOCOLS))
        if unknown:
            raise ConfigError(f"protocols: unknown {unknown}; known: {', '.join(PROTOCOLS)}")
        names = [task.name for task in self.tasks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"tasks: names {repeated} are used twice (each names its predictions file)")
        return self

    @classmethod
    def read(cls, path: str | Path) -> Suite:
        return load_config(path, [], cls)


def run_suite(path: str | Path, model: str | None = None, limit: int | None = None, progress: bool = True) -> dict:
    from allseeing.eval.answerers import load_for_prediction
    from allseeing.eval.predict import predict
    from allseeing.eval.score import score_file

    suite = Suite.read(path)
    endpoint = suite.endpoint()
    if endpoint is not None and model:
        raise ConfigError(
            f"{path}: --model runs a folder in-process; this suite asks the served {endpoint.served_model}"
        )
    model = model or suite.model or str(BUNDLED_MODEL)
    out = Path(suite.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    loaded = load_for_prediction(model) if endpoint is None else None  # once for every task
    for entry in suite.tasks:
        predictions = out / f"{entry.name}.jsonl"
        predict(
            entry.task,
            endpoint or model,
            entry.questions,
            suite.image_root,
            predictions,
            batch_size=suite.batch_size,
            max_new_tokens=entry.max_new_tokens,
            options_path=entry.options,
            lang=entry.lang,
            limit=limit,
            progress=progress,
            loaded=loaded,
        )
        if get_task(entry.task).needs_judge and entry.judge() is None:
            results[entry.name] = {"task": entry.task, "skipped": NO_JUDGE}
            continue
        # Scored against the whole question file: with --limit, coverage shows how much was answered.
        results[entry.name] = {
            protocol: score_file(
                entry.task,
                entry.questions,
                predictions,
                protocol,
                entry.box_format,
                entry.score_options(predictions),
            )
            for protocol in suite.protocols
        }
    answered_by = f"{endpoint.served_model} (served at {', '.join(endpoint.base_urls)})" if endpoint else str(model)
    report = {"suite": str(path), "model": answered_by, "results": results}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict) -> str:
    """The general benchmarks in one table beside ASMv2's published numbers, then one table per task: a row per
    protocol, the task's headline numbers, coverage and invalid answers."""
    lines = ["# Evaluation report", "", f"Model: `{report['model']}`; suite: `{report['suite']}`.", ""]
    lines += general_table(report["results"])
    for name, by_protocol in report["results"].items():
        if "skipped" in by_protocol:
            lines += [f"## {name} ({by_protocol['task']})", "", by_protocol["skipped"] + ".", ""]
            continue
        first = next(iter(by_protocol.values()))
        columns = _columns(first)
        lines += [
            f"## {name} ({first['task']})",
            "",
            "| protocol | " + " | ".join([*columns, "coverage", "invalid"]) + " |",
        ]
        lines.append("|---" * (len(columns) + 3) + "|")
        for protocol, scores in by_protocol.items():
            cells = [_cell(scores, column) for column in (*columns, "coverage")]
            lines.append(f"| {protocol} | " + " | ".join([*cells, str(scores["invalid"])]) + " |")
        lines.append("")
    return "\n".join(lines)


def general_table(results: dict[str, dict]) -> list[str]:
    """Every general benchmark of the suite in one table: its headline metric per protocol and ASMv2's published
    number (none when the suite has no general benchmark)."""
    rows = []
    for name, by_protocol in results.items():
        task = by_protocol.get("task") or next(iter(by_protocol.values()))["task"]
        if task not in PUBLISHED_ASMV2:
            continue
        metric, published = PUBLISHED_ASMV2[task]
        cells = [
            "–" if "skipped" in by_protocol else _cell(by_protocol[p], metric) if p in by_protocol else "–"
            for p in PROTOCOLS
        ]
        scored = next((scores for p, scores in by_protocol.items() if p in PROTOCOLS), None)
        coverage = _cell(scored, "coverage") if scored else "–"
        rows.append(f"| {name} | {task} | {metric} | " + " | ".join(cells) + f" | {coverage} | {published} |")
    if not rows:
        return []
    header = "| name | benchmark | metric | " + " | ".join(PROTOCOLS) + " | coverage | ASMv2 (published) |"
    note = "Coverage below 100: official scores only the answered questions, fixed counts the rest wrong."
    return ["## General benchmarks", "", header, "|---" * (5 + len(PROTOCOLS)) + "|", *rows, "", note, ""]


_BOOKKEEPING = {"task", "protocol", "asked", "answered", "coverage", "invalid"}


def _columns(scores: dict) -> list[str]:
    """Headline columns; grounding shows its categories and region captions METEOR and CIDEr per category."""
    task = scores["task"]
    if task == "grounding":
        categories = [k for k, v in scores.items() if k not in _BOOKKEEPING and not isinstance(v, dict)]
        return [k for k in categories if k != "average"] + ["average", "query_check/one_box", "query_check/images"]
    if task == "region_caption":
        categories = [k for k, v in scores.items() if isinstance(v, dict)]
        return [f"{c}/{metric}" for c in categories for metric in ("METEOR", "CIDEr")]
    return list(HEADLINES[task])


def _cell(scores: dict, column: str) -> str:
    value = scores
    for part in column.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.2f}"
