"""``allseeing predict TASK`` and ``allseeing eval score|submit|run``: answer question files, score answers,
write server submissions, run suites."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from allseeing.cli.common import UserError, add_model_option, common_options, print_json
from allseeing.eval.metrics.boxformat import BOX_FORMATS
from allseeing.eval.metrics.lemma import LEMMATIZERS
from allseeing.eval.registry import SUBMISSIONS, TASKS

TASK_NAMES = tuple(TASKS)


def register(verbs: argparse._SubParsersAction) -> None:
    common = common_options()
    p = verbs.add_parser(
        "predict",
        parents=[common],
        help="answer a question file with a model, in-process or served (batched, resumable, shardable)",
        description="Write one prediction line per question to --out ({question_id, text, prompt, model_id, "
        "metadata}); psg_pred_cls ranks the options instead (text = options best first, scores, sum_logprobs). "
        "Questions already in --out are skipped. Under torchrun each rank answers its share and rank 0 merges.",
    )
    p.add_argument("task", choices=TASK_NAMES)
    add_model_option(p)
    p.add_argument(
        "--questions", required=True, help="question file in the benchmark's format (JSONL; MMBench TSV; SQA JSON)"
    )
    p.add_argument("--image-root", required=True, help="folder the questions' image paths are relative to")
    p.add_argument("--out", required=True, help="predictions file (JSONL), appended to")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, help="default: the task's budget")
    p.add_argument("--options", help="psg_pred_cls options file (default: next to the questions)")
    p.add_argument("--limit", type=int, help="answer only the first N questions")
    p.add_argument(
        "--lang",
        choices=("en", "cn"),
        help="mmbench, mmbench_cn: the instruction's language (default: English, as upstream's scripts run both)",
    )
    served = p.add_argument_group(
        "served models (--backend openai)",
        "Ask a model served behind an OpenAI-compatible chat-completions API (transformers serve, vLLM, SGLang, a "
        "hosted API) instead of running --model in-process; docs/serving.md.",
    )
    served.add_argument(
        "--backend", choices=("local", "openai"), default="local", help="who answers (default: %(default)s)"
    )
    served.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="the server's API root, e.g. http://127.0.0.1:8000/v1; repeat it for several servers of the same model",
    )
    served.add_argument("--served-model", metavar="NAME", help="the model's name on the server")
    served.add_argument(
        "--api-key-env", metavar="VAR", help="the environment variable that holds the API key (never the key)"
    )
    served.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: %(default)s)")
    served.add_argument(
        "--timeout", type=float, default=600.0, help="seconds without a reply before a retry (default: %(default)s)"
    )
    served.add_argument(
        "--max-retries", type=int, default=5, help="retries of a failed request, with backoff (default: %(default)s)"
    )
    p.set_defaults(run=run_predict)

    evaluation = verbs.add_parser("eval", help="score predictions, run evaluation suites", description=__doc__)
    commands = evaluation.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser(
        "score",
        parents=[common],
        help="score a predictions file (no torch needed)",
        description="Print one JSON object of metrics (percentages with 2 decimals), with protocol, coverage "
        "(answered/asked) and invalid (unreadable answers). official reproduces upstream's numbers, quirks "
        "included; fixed corrects them (docs/evaluation.md).",
    )
    p.add_argument("task", choices=TASK_NAMES)
    p.add_argument("--questions", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--protocol", choices=("official", "fixed"), default="official")
    p.add_argument("--box-format", choices=BOX_FORMATS, default="square999", help="how the answers write boxes")
    p.add_argument(
        "--synonyms",
        help="psg: a synonym table (default: official reads upstream's table, fixed ours with plurals and multi-word "
        "class names)",
    )
    p.add_argument(
        "--lemmatizer",
        choices=LEMMATIZERS,
        default="auto",
        help="psg: spaCy's en_core_web_sm pipeline (upstream's lemmas), an approximation, or auto: spaCy when "
        "installed (pip install 'allseeing[psg]')",
    )
    p.add_argument(
        "--annotations",
        help="the benchmark's ground truth where its question file has none (e.g. VQAv2's annotations JSON, MME's "
        "folder; docs/evaluation.md lists each task's)",
    )
    p.add_argument("--out", help="also write the scores to this JSON file")
    judge = p.add_argument_group(
        "judged benchmarks (llava_wild, mmvet)",
        "A judge model served behind an OpenAI-compatible chat-completions API scores the answers; its replies are "
        "logged and reused, so a re-run asks only what it has not asked (docs/benchmarks/judged.md).",
    )
    judge.add_argument("--judge-base-url", metavar="URL", help="the judge's API root, e.g. https://api.openai.com/v1")
    judge.add_argument("--judge-model", metavar="NAME", help="the judge model's name there, e.g. gpt-4-0613")
    judge.add_argument(
        "--judge-api-key-env",
        metavar="VAR",
        help="the environment variable that holds the judge's API key (never the key)",
    )
    judge.add_argument("--judge-concurrency", type=int, default=4, help="requests in flight (default: %(default)s)")
    judge.add_argument(
        "--judge-max-retries", type=int, default=5, help="retries of a failed request (default: %(default)s)"
    )
    judge.add_argument(
        "--judge-log", metavar="PATH", help="the judge's replies, JSONL (default: the predictions path + .judge.jsonl)"
    )
    p.set_defaults(run=run_score)

    p = commands.add_parser(
        "submit",
        parents=[common],
        help="write the file a benchmark's evaluation server takes (VQAv2 test-dev, VizWiz test, MMBench, MM-Vet)",
        description="Write the predictions in the format the benchmark's server scores (as LLaVA's convert_*_for_"
        "submission.py scripts write it), after checking that every question is answered exactly once, with text.",
    )
    p.add_argument("task", choices=tuple(SUBMISSIONS))
    p.add_argument("--questions", required=True)
    p.add_argument("--predictions", required=True)
    p.add_argument("--out", required=True, help="the file to upload (.json; .xlsx for MMBench)")
    p.set_defaults(run=run_submit)

    p = commands.add_parser(
        "run",
        parents=[common],
        help="predict and score the tasks of a suite; write report.md and report.json",
        description="Read a suite (YAML: model, image_root, out, protocols, tasks: [{name, task, questions, ...}]), "
        "predict every task (resuming), score it, and write report.json and report.md into the suite's out folder.",
    )
    p.add_argument("--suite", required=True, help="suite file, e.g. configs/eval/synth.yaml")
    p.add_argument("--model", help="override the suite's model (default: the suite's, else the bundled small model)")
    p.add_argument("--limit", type=int, help="answer only the first N questions of each task")
    p.set_defaults(run=run_suite)


def served_endpoint(args: argparse.Namespace):
    """The served model that ``--backend openai`` and its options name."""
    from allseeing.infer.openai_client import Endpoint

    if not args.base_url or not args.served_model:
        raise UserError("--backend openai needs --base-url and --served-model")
    return Endpoint(
        base_urls=tuple(args.base_url),
        served_model=args.served_model,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout_s=args.timeout,
        max_retries=args.max_retries,
    )


def run_predict(args: argparse.Namespace) -> int:
    from allseeing.eval.predict import predict, shard_info

    if args.backend == "local" and (args.base_url or args.served_model):
        raise UserError("--base-url and --served-model are for --backend openai")
    summary = predict(
        args.task,
        served_endpoint(args) if args.backend == "openai" else args.model,
        args.questions,
        args.image_root,
        args.out,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        options_path=args.options,
        lang=args.lang,
        limit=args.limit,
        progress=sys.stderr.isatty(),
    )
    if shard_info()[0] == 0:  # under torchrun, one document: rank 0's, after it merged the shards
        print_json(summary)
    return 0


def run_score(args: argparse.Namespace) -> int:
    from allseeing.eval.score import score_file

    options = {"lemmatizer": args.lemmatizer, "synonyms": args.synonyms, "annotations": args.annotations}
    options = {name: value for name, value in options.items() if value is not None}
    options.update(judge_options(args))
    scores = score_file(args.task, args.questions, args.predictions, args.protocol, args.box_format, options)
    if args.out:
        Path(args.out).write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    print_json(scores)
    return 0


def judge_options(args: argparse.Namespace) -> dict:
    """``judge`` (the judge's Endpoint) and ``judge_log`` for the score options; none without --judge-base-url."""
    from allseeing.infer.openai_client import Endpoint

    if not args.judge_base_url and not args.judge_model:
        return {}
    if not args.judge_base_url or not args.judge_model:
        raise UserError("a judge needs both --judge-base-url and --judge-model")
    try:
        endpoint = Endpoint(
            base_urls=(args.judge_base_url,),
            served_model=args.judge_model,
            api_key_env=args.judge_api_key_env,
            concurrency=args.judge_concurrency,
            max_retries=args.judge_max_retries,
        )
    except ValueError as error:
        raise UserError(f"the judge (--judge-base-url, --judge-model): {error}") from None
    predictions = Path(args.predictions)
    log = args.judge_log or predictions.with_name(predictions.name.removesuffix(".jsonl") + ".judge.jsonl")
    return {"judge": endpoint, "judge_log": str(log)}


def run_submit(args: argparse.Namespace) -> int:
    task = TASKS[args.task]
    questions = task.read_questions(Path(args.questions))
    predictions = task.read_predictions(Path(args.predictions))
    SUBMISSIONS[args.task](args.task, questions, predictions, Path(args.out))
    print_json({"task": args.task, "questions": len(questions), "out": args.out})
    return 0


def run_suite(args: argparse.Namespace) -> int:
    from allseeing.eval.report import run_suite as run

    report = run(args.suite, model=args.model, limit=args.limit, progress=sys.stderr.isatty())
    print_json(report)
    return 0
