"""Overlays land on the ORIGINAL image where the boxes decode to (the worked example), with safe file names."""

from pathlib import Path

from PIL import Image

from allseeing.rec.draw import FILL_ALPHA, safe_name, write_overlays
from allseeing.rec.graph import SceneGraph, color_of
from allseeing.rec.parse import parse

GREY = (128, 128, 128)
BUS = (
    "a <ref>bus</ref><box>[[290, 260, 835, 781]]</box> <pred>on</pred><box>[[290, 260, 835, 781]]</box>"
    "<box>[[0, 583, 984, 900]]</box> a <ref>road</ref><box>[[0, 583, 984, 900]]</box>"
)


def tinted(color: tuple[int, int, int]) -> tuple[int, ...]:
    alpha = FILL_ALPHA / 255
    return tuple(round(g * (1 - alpha) + c * alpha) for g, c in zip(GREY, color, strict=True))


def near(pixel, expected, tolerance=2):
    return all(abs(p - e) <= tolerance for p, e in zip(pixel, expected, strict=True))


def test_worked_example_overlay_is_in_the_right_place(tmp_path):
    image = Image.new("RGB", (640, 514), GREY)
    graph = SceneGraph.from_document(parse(BUS, mode="strict"))
    files = write_overlays(image, graph, tmp_path)
    assert [f.name for f in files] == ["objects.png", "relation_00_bus_on_road.png"]
    drawn = Image.open(tmp_path / "objects.png")
    assert drawn.size == (640, 514)  # the original image, not the padded square
    bus = color_of(0)
    # bus decodes to x 185.79..534.93, y 103.57..437.34 (not 166.57..500.34 as on the padded canvas)
    assert near(drawn.getpixel((360, 150)), tinted(bus))
    assert near(drawn.getpixel((360, 110)), tinted(bus))
    assert drawn.getpixel((360, 98)) == GREY
    assert drawn.getpixel((186, 150)) == bus  # the opaque outline sits on the decoded left edge
    assert drawn.getpixel((182, 150)) == GREY
    assert drawn.getpixel((5, 5)) == GREY
    relation = Image.open(files[1])
    assert near(relation.getpixel((360, 150)), tinted(bus))


def test_out_of_range_boxes_are_clamped_only_when_drawing(tmp_path):
    doc = parse("<ref>big</ref><box>[[-50, 0, 2000, 999]]</box>")
    assert doc.objects[0].boxes == ((-50, 0, 2000, 999),)
    assert doc.errors
    (path,) = write_overlays(Image.new("RGB", (100, 80), GREY), SceneGraph.from_document(doc), tmp_path)
    assert Image.open(path).getpixel((50, 40)) == tinted(color_of(0))


def test_file_names_are_safe_and_stay_inside_the_folder(tmp_path):
    assert safe_name("../../etc/passwd") == "etc-passwd"
    assert safe_name("Ä/") == "unnamed"
    assert safe_name(None) == "unnamed"
    text = (
        "<ref>../a</ref><box>[[1, 1, 5, 5]]</box> <pred>../../x/y</pred><box>[[1, 1, 5, 5]]</box>"
        "<box>[[6, 6, 9, 9]]</box> <ref>/etc</ref><box>[[6, 6, 9, 9]]</box>"
    )
    out = tmp_path / "out"
    files = write_overlays(Image.new("RGB", (10, 10)), SceneGraph.from_document(parse(text)), out)
    assert [f.name for f in files] == ["objects.png", "relation_00_a_x-y_etc.png"]
    assert all(f.parent == out for f in files)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(f.name for f in files)


def test_the_paths_returned_are_as_the_folder_was_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = SceneGraph.from_document(parse("<ref>a</ref><box>[[1, 1, 5, 5]]</box>"))
    (relative,) = write_overlays(Image.new("RGB", (10, 10)), graph, Path("out"))
    assert relative == Path("out/objects.png") and relative.exists()


def test_small_images_are_magnified_and_boxes_follow(tmp_path):
    image = Image.new("RGB", (160, 100), GREY)  # shorter side 100 < 320: zoom 4
    doc = parse("<ref>dot</ref><box>[[0, 187, 499, 499]]</box>")  # square999 on 160x100: dy = 30 -> x 0..80, y 0..50
    (path,) = write_overlays(image, SceneGraph.from_document(doc), tmp_path)
    drawn = Image.open(path)
    assert drawn.size == (640, 400)
    assert near(drawn.getpixel((160, 150)), tinted(color_of(0)))  # pixel (40, 37.5) of the original, inside
    assert drawn.getpixel((340, 150)) == GREY  # pixel (85, 37.5): right of the box (x2 = 79.9)
