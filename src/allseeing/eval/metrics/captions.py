"""COCO caption metrics through pycocoevalcap: BLEU-4, METEOR, ROUGE-L, CIDEr, in percent.

The PTB tokenizer and METEOR run Java; SPICE is left out (it downloads Stanford CoreNLP at run time).
"""

from __future__ import annotations

import shutil

from allseeing.eval.errors import EvalError


def coco_caption_scores(references: dict[int, list[str]], candidates: dict[int, str]) -> dict[str, float]:
    """Scores of ``candidates`` (one caption per id) against ``references`` (several per id), over their ids."""
    if shutil.which("java") is None:
        raise EvalError(
            "caption metrics need Java on PATH (pycocoevalcap runs the PTB tokenizer and METEOR in Java); "
            "install a Java runtime, e.g. apt-get install default-jre-headless"
        )
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError:
        raise EvalError("caption metrics need pycocoevalcap: pip install 'allseeing[eval]'") from None
    ids = sorted(candidates)
    if not ids:
        return {"CIDEr": None, "METEOR": None, "BLEU_4": None, "ROUGE_L": None}
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in references[i]] for i in ids})
    res = tokenizer.tokenize({i: [{"caption": candidates[i]}] for i in ids})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    meteor, _ = Meteor().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {
        "CIDEr": round(100 * float(cider), 2),
        "METEOR": round(100 * float(meteor), 2),
        "BLEU_4": round(100 * float(bleu[3]), 2),
        "ROUGE_L": round(100 * float(rouge), 2),
    }
