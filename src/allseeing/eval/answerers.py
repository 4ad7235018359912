"""Who answers the questions of ``allseeing predict``: a model run in-process, or a model served behind an
OpenAI-compatible API (``--backend openai``).

Both take the same :class:`~allseeing.eval.task.Ask` (the prompt upstream's evaluation builds), read the image the
same way (transparency discarded, as upstream's loaders read it) and give records of the same shape. Each states
``run``: what makes two runs' answers different (backend, model, decoding), checked before an output file is
appended to; and ``provenance``: what every answer line records besides.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from allseeing import __version__
from allseeing.data.image import ImageError, load_image
from allseeing.eval.task import Ask, EvalError, Task
from allseeing.infer.openai_client import ChatClient, Endpoint, answer_all, chat_messages


class Answerer(Protocol):
    run: dict[str, Any]  # backend, model, decoding and the task's settings: what two runs of one file must share
    model_id: str  # the ``model_id`` of every line

    def provenance(self) -> dict[str, Any]:
        """The ``metadata`` of every answer line (``run`` and the details that may differ between resumes)."""

    def answer(self, asks: list[Ask], image_root: Path) -> Iterator[dict]:
        """One record per ask ({question_id, prompt, text, ...}), yielded as soon as it is answered."""


def read_image(ask: Ask, image_root: Path) -> Image.Image | None:
    """The question's image, a file under ``image_root`` or inline bytes; as upstream's evaluation read pixels:
    transparency discarded, not composited on white."""
    if isinstance(ask.image, bytes):
        try:
            return load_image(io.BytesIO(ask.image), transparency="discard")
        except ImageError as error:
            raise ImageError(f"question {ask.question_id!r}: its inline image: {error}") from None
    return load_image(image_root / ask.image, transparency="discard") if ask.image else None


# -- in-process -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedModel:
    """A model ready to answer, loaded once for several question files (``eval run``)."""

    folder: Path
    model: Any
    processor: Any
    dtype: Any  # torch.dtype


def load_for_prediction(model_dir: str | Path) -> LoadedModel:
    """The model in ``model_dir`` as evaluation runs it: fp16 on a GPU, one card per rank, as upstream evaluated;
    fp32 on a CPU."""
    import torch

    from allseeing.model.build import load

    dtype = torch.float16 if torch.cuda.is_available() else torch.float32
    model, processor = load(model_dir, dtype=dtype)
    if torch.cuda.is_available():
        model = model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return LoadedModel(Path(model_dir), model, processor, dtype)


class LocalAnswerer:
    """A model folder run in-process: batched greedy generation, or option ranking by log-likelihood. The model
    loads on the first answer (after the output file was checked), unless ``loaded`` already holds it."""

    def __init__(
        self,
        model_dir: str | Path,
        task: Task,
        *,
        max_new_tokens: int,
        batch_size: int,
        loaded: LoadedModel | None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        from allseeing.infer.generate import DecodingConfig

        if loaded is not None and loaded.folder.resolve() != Path(model_dir).resolve():
            raise ValueError(f"the model loaded is {loaded.folder}, not {model_dir}")
        self.model_dir, self.task, self.loaded = Path(model_dir), task, loaded
        self.decoding = DecodingConfig(max_new_tokens=max_new_tokens, batch_size=batch_size)
        self.run = {
            "backend": "local",
            "model": str(self.model_dir.resolve()),
            "decoding": asdict(self.decoding) if not task.ranks_options else {"ranking": "log-likelihood"},
            "settings": settings or None,
        }
        self.model_id = self.model_dir.name

    def _model(self) -> LoadedModel:
        if self.loaded is None:
            self.loaded = load_for_prediction(self.model_dir)
        return self.loaded

    def provenance(self) -> dict[str, Any]:
        loaded = self._model()
        return {
            **self.run,
            "template": loaded.processor.config.template,
            "dtype": str(loaded.dtype).removeprefix("torch."),
            "allseeing": __version__,
        }

    def answer(self, asks: list[Ask], image_root: Path) -> Iterator[dict]:
        for start in range(0, len(asks), self.decoding.batch_size):
            yield from self._batch(asks[start : start + self.decoding.batch_size], image_root)

    def _batch(self, batch: list[Ask], image_root: Path) -> list[dict]:
        from allseeing.infer.generate import Request, generate
        from allseeing.infer.rank import rank_options

        model, processor = self._model().model, self._model().processor
        images = [read_image(ask, image_root) for ask in batch]
        prompts = [processor.template.render(list(ask.turns)) for ask in batch]
        if self.task.ranks_options:
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
        requests = [Request(image, ask.turns) for ask, image in zip(batch, images, strict=True)]
        generations = generate(model, processor, requests, self.decoding, fit_context=True)
        return [
            {"question_id": ask.question_id, "prompt": prompt, "text": generation.text}
            for ask, prompt, generation in zip(batch, prompts, generations, strict=True)
        ]


# -- served -----------------------------------------------------------------------------------------------------
class ServedAnswerer:
    """A model behind an OpenAI-compatible server (:mod:`allseeing.infer.openai_client`), asked ``concurrency``
    questions at a time. Only generation: ranking options needs the log-likelihood of given text, which the
    chat-completions API does not give."""

    def __init__(
        self, endpoint: Endpoint, task: Task, *, max_new_tokens: int, settings: dict[str, Any] | None = None
    ) -> None:
        if task.ranks_options:
            raise EvalError(
                f"{task.name} ranks its options by the model's log-likelihood, which a chat-completions server does "
                "not report: run it in-process (--backend local)"
            )
        self.endpoint, self.max_new_tokens = endpoint, max_new_tokens
        self.run = {
            "backend": "openai",
            "model": endpoint.served_model,
            "decoding": {"max_new_tokens": max_new_tokens, "temperature": 0},
            "settings": settings or None,
        }
        self.model_id = endpoint.served_model
        self.requests = 0  # chat completions sent by the last answer(), retries included

    def provenance(self) -> dict[str, Any]:
        return {**self.run, "base_url": list(self.endpoint.base_urls), "allseeing": __version__}

    def answer(self, asks: list[Ask], image_root: Path) -> Iterator[dict]:
        if not asks:  # nothing to ask: no client, so no key is needed to re-score a finished file
            return
        client = ChatClient(self.endpoint)
        by_id = {ask.question_id: ask for ask in asks}

        def job(ask: Ask):
            return lambda: (chat_messages(ask.turns, read_image(ask, image_root)), self.max_new_tokens)

        try:
            for question_id, text in answer_all(client, ((ask.question_id, job(ask)) for ask in asks)):
                yield {"question_id": question_id, "prompt": prompt_text(by_id[question_id]), "text": text}
        finally:
            self.requests = client.requests


def prompt_text(ask: Ask) -> str:
    """What a served model was asked: its user turns' text, ``<image>`` where the image goes (the server's chat
    template wraps them, so the whole prompt is the server's to know)."""
    return "\n".join(user for user, _ in ask.turns)
