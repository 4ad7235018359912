"""An ASMv2 checkpoint exactly as upstream's stack saved it (fp16 shards with rotary buffers, SentencePiece
tokenizer with ``legacy`` false), used as a researcher would: ``allseeing convert``, then ``allseeing chat`` and
``allseeing predict`` on the converted folder. Prompts and greedy answers are the ones upstream's code produced."""

import json

import pytest

from allseeing.cli import main
from allseeing.model.processor import Processor
from tests import upstream


def test_convert_then_chat_and_predict_as_upstream_runs_it(tmp_path, capsys):
    source = upstream.checkpoint(tmp_path / "ASMv2", "false")
    out = tmp_path / "asmv2-hf"
    assert (
        main(["convert", "--llava", str(source), "--vision", str(upstream.FIXTURES / "clip"), "--out", str(out)]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {"out": str(out)}
    processor = Processor.load(out)

    def greedy(name: str) -> str:
        return processor.decode(upstream.case("false", name)["greedy_ids"]).strip()

    image = upstream.FIXTURES / "images" / "wide.png"
    question = upstream.question("single")["text"]
    argv = ["chat", "--model", str(out), "--image", str(image), "--prompt", question, "--max-new-tokens", "8"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["answer"] == greedy("single")

    predictions = tmp_path / "vcr.jsonl"
    argv = ["predict", "vcr", "--model", str(out), "--questions", str(upstream.FIXTURES / "questions" / "vcr.jsonl")]
    argv += ["--image-root", str(upstream.FIXTURES / "images"), "--out", str(predictions), "--max-new-tokens", "8"]
    assert main(argv) == 0
    (line,) = [json.loads(text) for text in predictions.read_text().splitlines()]
    assert line["prompt"] == upstream.case("false", "vcr")["prompt"]  # multi-turn, as upstream evaluated VCR
    assert line["text"] == greedy("vcr")

    ranked = tmp_path / "rank.jsonl"
    argv = [
        "predict",
        "psg_pred_cls",
        "--model",
        str(out),
        "--options",
        str(upstream.FIXTURES / "questions/options.json"),
    ]
    argv += ["--questions", str(upstream.FIXTURES / "questions/rank.jsonl"), "--image-root", str(image.parent)]
    assert main([*argv, "--out", str(ranked)]) == 0
    (line,) = [json.loads(text) for text in ranked.read_text().splitlines()]
    expected = upstream.case("false", "rank")
    by_loss = sorted(zip(expected["losses"], expected["options"], strict=True))  # upstream ranks by -loss
    assert line["text"] == [option for _, option in by_loss]
    assert line["scores"] == pytest.approx([-loss for loss, _ in by_loss], abs=1e-4)
