"""Benchmarks scored by a judge model: LLaVA-Bench (in the wild)'s review and MM-Vet's grader.

What the judge is asked (upstream's prompts, shipped unchanged in ``eval/data/judge_prompts.json`` with their
source and licence), how its reply is read and how the judgments add up. No network code: the tasks in
:mod:`allseeing.eval.tasks.judged` ask the judge.

LLaVA-Bench (``llava/eval/eval_gpt_review_bench.py`` + ``summarize_gpt_review.py`` of haotian-liu/LLaVA, the same
in OpenGVLab/all-seeing): the judge scores the reference answer (GPT-4's, "Assistant 1") and the model's
("Assistant 2") from 1 to 10 on the first line of its reply; the relative score is mean(model) / mean(reference)
* 100, per category and overall.

MM-Vet (``mm-vet_evaluator.py`` of yuweihao/MM-Vet): the judge completes a few-shot table with a correctness in
[0, 1]; a reply that is not one is asked again (:data:`MMVET_TEMPERATURES`), then scored 0.0. The total is the
mean * 100, also per capability and per capability combination.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources

from allseeing.eval.errors import EvalError

LLAVA_MAX_TOKENS = 1024  # eval_gpt_review_bench.py's --max-tokens default
LLAVA_CATEGORY_PREFIX = "llava_bench_"  # a question's category is looked up in rule.json under this prefix
MMVET_MAX_TOKENS = 3  # the grader's max_tokens
# The temperatures of the grader's requests whose replies it reads: the question, then up to four asks again with
# the retry suffix, at 0.0, 0.5, 1.0 and 1.5 (it raises the temperature to escape a reply it cannot read). Its
# fifth ask again, at 2.0, is never read (it scores 0.0 right after), so it is not sent.
MMVET_TEMPERATURES = (0.0, 0.0, 0.5, 1.0, 1.5)


@cache
def prompts() -> dict:
    """The upstream prompts of ``eval/data/judge_prompts.json``."""
    data = resources.files("allseeing.eval").joinpath("data/judge_prompts.json")
    return json.loads(data.read_text(encoding="utf-8"))


def numpy_round(value: float, decimals: int) -> float:
    """``value`` rounded as ``numpy.round`` rounds a float64 (scaled by 10**decimals, rounded half to even,
    scaled back), which is not always Python's ``round``: round(0.45, 1) is 0.5 in Python, 0.4 in numpy. NaN and
    infinities stay as they are."""
    if not math.isfinite(value):
        return value
    scale = 10.0**decimals
    return round(value * scale) / scale


def finite_or_none(value: float | None) -> float | None:
    """A score for JSON: NaN and infinities (which a judge's "nan" can produce under ``official``) become null."""
    return value if value is not None and math.isfinite(value) else None


# LLaVA-Bench ------------------------------------------------------------------------------------------------------


def llava_categories() -> tuple[str, ...]:
    """The question categories that have a review rule (conv, detail, complex)."""
    rules = prompts()["llava_bench"]["rules"]
    return tuple(name.removeprefix(LLAVA_CATEGORY_PREFIX) for name in rules)


def llava_review_messages(
    caption: str | list[str], question: str, reference: str, answer: str, category: str
) -> list[dict]:
    """The chat messages of one review, as ``eval_gpt_review_bench.py`` builds them: the image's caption as the
    context, the question, the reference answer as Assistant 1, the model's as Assistant 2, the category's rule."""
    llava = prompts()["llava_bench"]
    rule = llava["rules"].get(LLAVA_CATEGORY_PREFIX + category)
    if rule is None:
        raise EvalError(f"category {category!r} has no review rule; known: {', '.join(llava_categories())}")
    context = "\n".join(caption) if isinstance(caption, list) else caption
    role = rule["role"]
    content = (
        f"[Context]\n{context}\n\n"
        f"[Question]\n{question}\n\n"
        f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
        f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
        f"[System]\n{rule['prompt']}\n\n"
    )
    return [{"role": "system", "content": llava["system"]}, {"role": "user", "content": content}]


def parse_score_pair(review: str, official: bool) -> tuple[float, float] | None:
    """(reference score, model score) from the first line of a review, or None when it does not hold two.

    ``official``: upstream's ``parse_score``: commas become spaces, the line is split at every single space and
    must give exactly two numbers ("8, 6" gives three pieces and fails; Python's float, so "nan" passes).
    ``fixed``: split at any run of white space, and both numbers must be finite.
    """
    line = review.split("\n")[0].replace(",", " ")
    pieces = line.split(" ") if official else line.split()
    if len(pieces) != 2:
        return None
    try:
        pair = (float(pieces[0]), float(pieces[1]))
    except ValueError:
        return None
    if not official and not all(math.isfinite(score) for score in pair):
        return None
    return pair


def relative_scores(rows: Iterable[tuple[str, tuple[float, float] | None]], official: bool) -> dict:
    """The relative score (mean model score / mean reference score * 100) overall and per category, with both
    means on upstream's 0-100 scale (``reference_score``, ``model_score``), from (category, score pair) rows.

    ``official``: as ``summarize_gpt_review.py``: an unreadable review counts as (-1, -1) in both means, the means
    are added in row order and rounded to 3 decimals before the ratio, every number is rounded to 1 decimal.
    ``fixed``: unreadable reviews are left out, the means are exact sums, numbers have 2 decimals.
    """
    groups: dict[str, list[tuple[float, float]]] = {"overall": []}
    for category, pair in rows:
        if pair is None:
            if not official:
                continue
            pair = (-1.0, -1.0)
        groups["overall"].append(pair)
        groups.setdefault(category, []).append(pair)
    relative, reference, model = {}, {}, {}
    for name in ["overall", *sorted(set(groups) - {"overall"})]:
        pairs = groups[name]
        if not pairs:
            relative[name] = reference[name] = model[name] = None
            continue
        if official:
            first = round(sum(p[0] for p in pairs) / len(pairs), 3)
            second = round(sum(p[1] for p in pairs) / len(pairs), 3)
            ratio = round(second / first * 100, 1) if first else None
            reference[name], model[name] = round(first * 10, 1), round(second * 10, 1)
        else:
            first = math.fsum(p[0] for p in pairs) / len(pairs)
            second = math.fsum(p[1] for p in pairs) / len(pairs)
            ratio = round(second / first * 100, 2) if first else None
            reference[name], model[name] = round(first * 10, 2), round(second * 10, 2)
        relative[name] = finite_or_none(ratio)
        reference[name], model[name] = finite_or_none(reference[name]), finite_or_none(model[name])
    return {**relative, "reference_score": reference, "model_score": model}


# MM-Vet -----------------------------------------------------------------------------------------------------------


def mmvet_messages(question: str, answer: str, prediction: str, again: bool) -> list[dict]:
    """The grader's request: its few-shot table, then the row to complete (question | ground truth, with spaces
    around <AND> and <OR> | the model's answer | ), and the retry suffix when it asks ``again``."""
    mmvet = prompts()["mmvet"]
    truth = answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    content = mmvet["prompt"] + "\n" + " | ".join([question, truth, prediction, ""])
    if again:
        content += mmvet["retry_suffix"]
    return [{"role": "user", "content": content}]


def parse_correctness(reply: str, official: bool) -> float | None:
    """The score in a grader reply (its first space-separated piece, a float in [0, 1]), or None.

    Both protocols read it as the grader does (Python's float, so " 1.", "0.50" pass and "0.5." fails); ``fixed``
    also refuses "nan", which the grader's range check lets through and which makes every mean NaN.
    """
    try:
        score = float(reply.split(" ")[0].strip())
    except ValueError:
        return None
    if score > 1.0 or score < 0.0:
        return None
    if not official and math.isnan(score):
        return None
    return score


def combination_name(capabilities: Iterable[str]) -> str:
    """A capability combination's name: its capabilities sorted, joined by "_" (the grader joins a Python set,
    whose order changes from run to run)."""
    return "_".join(sorted(set(capabilities)))


def capability_scores(rows: list[tuple[Iterable[str], float]], official: bool) -> dict:
    """``total`` (mean score * 100), ``capabilities`` (the mean over the questions needing each capability) and
    ``combinations`` (over the questions needing exactly that set), from (capabilities, score) rows, most
    frequent first (ties in order of first appearance).

    ``official``: as the grader's ``export_result`` with one run: scores added in row order (the grader's: the
    order of mm-vet.json), numpy's rounding to 1 decimal. ``fixed``: exact sums, Python's rounding to 2 decimals.
    """
    sums: dict[str, list[float]] = {}
    combos: dict[str, list[float]] = {}
    for capabilities, score in rows:
        for capability in sorted(set(capabilities)):
            sums.setdefault(capability, []).append(score)
        combos.setdefault(combination_name(capabilities), []).append(score)

    def mean(scores: list[float]) -> float | None:
        if not scores:
            return None
        if official:
            return finite_or_none(numpy_round(sum(scores, 0.0) / len(scores) * 100, 1))
        return finite_or_none(round(math.fsum(scores) / len(scores) * 100, 2))

    def by_count(groups: dict[str, list[float]]) -> dict[str, float | None]:
        counts = Counter({name: len(scores) for name, scores in groups.items()})
        return {name: mean(groups[name]) for name, _ in counts.most_common()}

    return {
        "total": mean([score for _, score in rows]),
        "capabilities": by_count(sums),
        "combinations": by_count(combos),
    }
