"""MMBench and MMBench-CN: the TSV with base64 images, asked as ``llava/eval/model_vqa_mmbench.py
--single-pred-prompt`` asks it, scored with MMBench's circular evaluation.

The question file is the benchmark's TSV (``mmbench_dev_20230712.tsv``, ``mmbench_dev_cn_20231003.tsv``, the test
TSVs): columns ``index``, ``question``, ``hint``, ``A``-``D``, ``answer`` (dev only), ``category``,
``l2-category``, ``image`` (base64), ... One row is one question: a question's rotated copies are rows of their own
at ``index + k * 1,000,000``. A cell pandas reads as missing (empty, "nan", "None", "NA", ...) is missing here too.

Keys: ``overall`` (circular accuracy: a question counts when every row of it is right), ``vanilla`` (its first row
alone), ``per_category`` and ``per_l2_category`` (circular), ``questions`` and ``rows``. ``official`` scores an
unanswered row as upstream's submission carries it (an empty cell, which the evaluator reads as the text "nan");
``fixed`` counts it wrong. Both read letters with MMBench's ``can_infer`` and are order-free.
"""

from __future__ import annotations

import base64
import binascii
import csv
import re
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from allseeing.data.templates import MMBENCH_CIRCULAR_STEP, image_question
from allseeing.eval.metrics.multiple_choice import can_infer, circular_hits, tally
from allseeing.eval.task import (
    Ask,
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    key,
    percent,
    require_all,
)
from allseeing.eval.tasks.common import JsonlQuestions

# pandas' default NA strings (read_table): upstream reads the TSV with pandas, so these cells are NaN there.
PANDAS_NA = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"),
        *("NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
    }
)
PROMPT_LETTERS = ("A", "B", "C", "D")  # model_vqa_mmbench.py's all_options: E is never asked
INSTRUCTIONS = {
    "en": "Answer with the option's letter from the given choices directly.",
    "cn": "请直接回答选项字母。",
}
# Upstream's scripts run model_vqa_mmbench.py without --lang for MMBench-CN too: both ask in English by default.
DEFAULT_LANG = "en"
# What an unanswered row is in upstream's submission: an empty cell, which the evaluator reads back as NaN and
# turns into text with str().
UNANSWERED = "nan"


def is_na(value: str | None) -> bool:
    """A cell pandas reads as NaN (the evaluator's and the submission script's view of the TSV)."""
    return value is None or value in PANDAS_NA


def is_missing(value: str | None) -> bool:
    """A cell the prompt leaves out: NaN, or "nan"/"none" in any case (model_vqa_mmbench's ``is_none``)."""
    return is_na(value) or value.lower() in ("nan", "none")


def read_tsv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells)]) of a TSV, quoted as pandas quotes (``"``, doubled inside a field)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # a base64 image is one field, far over csv's default limit
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t")
            header = next(reader, None)
            rows = [(reader.line_num, cells) for cells in reader if cells]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise EvalError(f"cannot read {path}: {error}") from None
    finally:
        csv.field_size_limit(limit)
    if not header:
        raise EvalError(f"{path}: empty file, expected a TSV with a header line")
    for number, cells in rows:
        if len(cells) > len(header):
            raise EvalError(f"{path}:{number}: {len(cells)} fields, the header has {len(header)}")
        cells.extend([""] * (len(header) - len(cells)))  # pandas fills a short line with NaN
    return header, rows


def read_mmbench(path: Path) -> list[dict]:
    """The rows of an MMBench TSV as records keyed by column, each with ``question_id``: its ``index``."""
    header, rows = read_tsv(path)
    if "index" not in header:
        raise EvalError(f"{path}: no 'index' column (columns: {', '.join(header)})")
    seen: dict[str, int] = {}
    records = []
    for number, cells in rows:
        record = dict(zip(header, cells, strict=True))  # read_tsv made them as long
        try:
            question_id = key(int(record["index"]))
        except ValueError:
            raise EvalError(f"{path}:{number}: index {record['index']!r} is not an integer") from None
        if question_id in seen:
            raise EvalError(f"{path}: index {question_id} is on lines {seen[question_id]} and {number}")
        seen[question_id] = number
        record["question_id"] = question_id
        records.append(record)
    return records


def prompt(question: dict, lang: str) -> str:
    """The user turn: ``<image>``, the hint, the question, the options up to the first missing one, the
    instruction."""
    text = question["question"]
    hint = question.get("hint")
    if not is_missing(hint):
        text = f"{hint}\n{text}"
    for letter in PROMPT_LETTERS:
        if is_missing(question.get(letter)):
            break
        text += f"\n{letter}. {question[letter]}"
    return image_question(f"{text}\n{INSTRUCTIONS[lang]}")


def choices_of(question: dict) -> dict[str, str]:
    """The options the evaluator matches answers against: every letter column with a value (a gap does not stop
    it, unlike the prompt)."""
    return {
        column: value
        for column, value in question.items()
        if len(column) == 1 and "A" <= column <= "Z" and not is_na(value)
    }


def image_of(question: dict, by_id: dict[str, dict], path: Path) -> bytes:
    """The question's image decoded. A short cell naming another row's index stands for that row's image (how
    VLMEvalKit's copies of the TSVs store a repeated image)."""
    encoded = question.get("image") or ""
    if len(encoded) <= 64 and encoded.isdigit() and encoded in by_id:
        encoded = by_id[encoded].get("image") or ""
    try:
        image = base64.b64decode(encoded)
    except (binascii.Error, ValueError) as error:
        raise EvalError(f"{path}: question {question['question_id']!r}: its image is not base64: {error}") from None
    if not image:
        raise EvalError(f"{path}: question {question['question_id']!r} has no image")
    return image


def answers_of(questions: list[dict], context: ScoreContext) -> dict[str, str | None]:
    """The correct letter per question: from the TSV given as annotations (matched by index), else the question
    file's own ``answer`` column."""
    source, path = questions, context.questions_path
    annotations = context.options.get("annotations")
    if annotations:
        path = Path(annotations)
        source = read_mmbench(path)
    truth = {record["question_id"]: record.get("answer") for record in source}
    for question in questions:
        if is_na(truth.get(question["question_id"])):
            raise EvalError(
                f"{path}: no answer for question {question['question_id']!r} (a test TSV has none: score against "
                f"the dev TSV, or write a submission)"
            )
    return truth


class Mmbench(JsonlQuestions):
    name = "mmbench"
    max_new_tokens = 1024  # model_vqa_mmbench.py's budget
    ranks_options = False
    fields = ("question_id", "question", "category")

    def read_questions(self, path: Path) -> list[dict]:
        return read_mmbench(Path(path))

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        """``settings["lang"]``: ``en`` (default, as upstream's scripts run) or ``cn`` (``--lang cn``)."""
        lang = (settings or {}).get("lang") or DEFAULT_LANG
        if lang not in INSTRUCTIONS:
            raise EvalError(f"{self.name}: unknown prompt language {lang!r}; choose one of {', '.join(INSTRUCTIONS)}")
        require_all(questions, ("question_id", "question"), questions_path)
        by_id = {question["question_id"]: question for question in questions}
        return [
            Ask(q["question_id"], image_of(q, by_id, questions_path), ((prompt(q, lang), None),)) for q in questions
        ]

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        answers = answers_of(questions, context)
        official = context.protocol == "official"
        correct: dict[int, bool] = {}
        invalid = 0
        for question in questions:
            prediction = predictions.get(question["question_id"])
            text = UNANSWERED if prediction is None and official else answer_text(prediction)
            letter = None if text is None else can_infer(text, choices_of(question))
            invalid += prediction is not None and text is not None and letter is None
            correct[int(question["question_id"])] = letter is not None and letter == answers[question["question_id"]]
        hits = circular_hits(correct)
        firsts = {int(q["question_id"]): q for q in questions if int(q["question_id"]) < MMBENCH_CIRCULAR_STEP}
        per_category = tally((firsts[index]["category"], hit) for index, hit in hits.items())
        per_l2 = tally(
            (firsts[index]["l2-category"], hit)
            for index, hit in hits.items()
            if not is_na(firsts[index].get("l2-category"))
        )
        return {
            "overall": percent(sum(hits.values()), len(hits)),
            "vanilla": percent(sum(correct[index] for index in hits), len(hits)),
            "per_l2_category": {name: percent(*counts) for name, counts in per_l2.items()},
            "per_category": {name: percent(*counts) for name, counts in per_category.items()},
            "questions": len(hits),
            "rows": len(correct),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }


class MmbenchCn(Mmbench):
    name = "mmbench_cn"


# -- the submission file ----------------------------------------------------------------------------------------
# scripts/convert_mmbench_for_submission.py: the TSV without these columns, a ``prediction`` column inserted as the
# 7th, written as an xlsx (pandas + openpyxl there; the standard library's zipfile here).
SUBMISSION_DROPS = ("hint", "category", "source", "image", "comment", "l2-category")
PREDICTION_AT = 6
# Characters XML 1.0 cannot hold: an xlsx cannot carry them (openpyxl refuses them), so they are left out.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def write_submission(task_name: str, questions: list[dict], predictions: dict[str, dict], out_path: Path) -> Path:
    """The xlsx MMBench's evaluation server takes: every row of the TSV with its ``prediction``. Refuses a
    prediction set that does not answer every question exactly once, with text."""
    if task_name not in (Mmbench.name, MmbenchCn.name):
        raise EvalError(f"no MMBench submission for task {task_name!r}")
    asked = {question["question_id"] for question in questions}
    unanswered = [q["question_id"] for q in questions if answer_text(predictions.get(q["question_id"])) is None]
    strangers = sorted(set(predictions) - asked)
    if unanswered or strangers:
        problems = []
        if unanswered:
            problems.append(f"{len(unanswered)} questions without a text answer, e.g. {unanswered[:3]}")
        if strangers:
            problems.append(f"{len(strangers)} answers to questions not in the TSV, e.g. {strangers[:3]}")
        raise EvalError(f"{task_name} submission: {'; '.join(problems)}")
    if not questions:
        raise EvalError(f"{task_name}: no questions to submit")
    columns = [column for column in questions[0] if column != "question_id" and column not in SUBMISSION_DROPS]
    columns.insert(PREDICTION_AT, "prediction")
    rows = []
    for question in questions:
        cells = {**question, "prediction": predictions[question["question_id"]]["text"]}
        rows.append([_cell(column, cells[column]) for column in columns])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _write_xlsx(out_path, columns, rows)
    return out_path


def _cell(column: str, value: str) -> int | str | None:
    """A value as pandas wrote it: the index a number, a missing cell empty, the rest text."""
    if column == "index":
        return int(value)
    if column != "prediction" and is_na(value):
        return None
    return value


def _write_xlsx(path: Path, header: list[str], rows: list[list[int | str | None]]) -> None:
    """One sheet, ``Sheet1`` (pandas' name), text as inline strings: the smallest workbook Excel, openpyxl and
    pandas read."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    relations = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    office = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    xml = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{office}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{office}.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
            f'Type="{relations}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{relations}">'
            '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
            f'Type="{relations}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{_sheet_rows([header, *rows])}'
        "</sheetData></worksheet>",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, xml + body)


def _sheet_rows(rows: list[list]) -> str:
    lines = []
    for number, row in enumerate(rows, start=1):
        cells = []
        for column, value in enumerate(row):
            where = f"{_column_name(column)}{number}"
            if isinstance(value, int):
                cells.append(f'<c r="{where}"><v>{value}</v></c>')
            elif value is not None:
                text = escape(_NOT_XML.sub("", value))
                cells.append(f'<c r="{where}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
        lines.append(f'<row r="{number}">{"".join(cells)}</row>')
    return "".join(lines)


def _column_name(column: int) -> str:
    """A, B, ..., Z, AA, ... for columns 0, 1, ..."""
    name = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
