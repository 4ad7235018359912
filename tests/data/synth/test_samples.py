"""The sample images of the quickstart and the demo: fixed and named."""

from PIL import ImageChops

from allseeing.data.synth.samples import sample_images


def test_samples_are_the_same_every_time_and_named():
    first, again = sample_images(3), sample_images(3)
    assert list(first) == ["scene-1", "scene-2", "scene-3", "example-photo"]
    for name in first:
        assert ImageChops.difference(first[name], again[name]).getbbox() is None
    assert first["example-photo"].size == (640, 514)
    assert len({first[f"scene-{i}"].tobytes() for i in (1, 2, 3)}) == 3
