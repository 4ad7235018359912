"""A chat session on a converted upstream checkpoint sends upstream's ids from the second turn on and answers
with upstream's greedy tokens."""

import torch

from allseeing.data.image import load_image
from allseeing.data.templates import turns_from_llava
from allseeing.infer.chat import ChatSession
from allseeing.infer.generate import DecodingConfig
from allseeing.model.build import load
from tests import upstream


def test_the_second_turn_sends_upstreams_ids_and_gets_upstreams_answer(upstream_converted):
    model, processor = load(upstream_converted("false"))
    first, (second, _) = turns_from_llava(upstream.question("chat")["conversations"], open_last=True)
    image = load_image(upstream.FIXTURES / "images" / "wide.png")
    session = ChatSession(model, processor, image, DecodingConfig(max_new_tokens=8), history=[first])
    sent = []
    hook = model.register_forward_pre_hook(lambda _, args, kwargs: sent.append(kwargs["input_ids"]), with_kwargs=True)
    try:
        answer = session.ask(second)
    finally:
        hook.remove()
    expected = upstream.case("false", "chat")
    assert sent[0][0].tolist() == upstream.expand(expected["input_ids"], processor.special.image)
    assert answer.text == processor.decode(expected["greedy_ids"]).strip()
    assert session.history[-1] == (second, answer.text)
    assert torch.equal(processor.pixel_values([image])[0], upstream.tensors()["pixels/wide"])
