"""An ASMv2 checkpoint exactly as upstream's stack saved it (fp16 shards with rotary buffers, SentencePiece
tokenizer with ``legacy`` false), used as a researcher would: ``allseeing convert``, then ``allseeing chat`` and
``allseeing predict`` on the converted folder. Prompts and greedy answers are the ones upstream's code produced."""

import json

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
