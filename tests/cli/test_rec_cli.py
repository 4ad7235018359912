"""``allseeing rec ...`` run as a user would: arguments in, JSON or text out, one-line errors."""

import io
import json
import shlex
import subprocess
import sys

import pytest
from PIL import Image

from allseeing.assets import EXAMPLE_IMAGE, EXAMPLE_REC
from allseeing.cli import main

BUS = (
    "a <ref>bus</ref><box>[[290, 260, 835, 781]]</box> <pred>on</pred><box>[[290, 260, 835, 781]]</box>"
    "<box>[[0, 583, 984, 900]]</box> a <ref>road</ref><box>[[0, 583, 984, 900]]</box>"
)


@pytest.fixture
def run(capsys, monkeypatch):
    """Run ``allseeing <command>`` in-process; returns (exit code, stdout, stderr)."""

    def invoke(command: str, stdin: str | bytes = "") -> tuple[int, str, str]:
        data = stdin if isinstance(stdin, bytes) else stdin.encode()
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace"))
        code = main(shlex.split(command))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_parse_from_stdin_prints_the_contract(run):
    code, out, _ = run("rec parse --size 640 514", stdin=BUS)
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"caption", "objects", "relations", "triplets", "errors"}
    assert result["caption"] == "a bus on a road"
    assert result["objects"][0] == {
        "phrase": "bus",
        "boxes": [[290, 260, 835, 781]],
        "pixel_boxes": [[185.79, 103.57, 534.93, 437.34]],
        "start": 2,
        "end": 49,
    }
    assert result["triplets"][0]["subject"] == "bus" and result["triplets"][0]["object"] == "road"


def test_parse_strict_error_exits_1_with_the_offset(run, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a <ref>dog</ref><box>[[1, 2, 3, 1000]]</box>")
    code, out, err = run(f"rec parse --mode strict {path}")
    assert (code, out) == (1, "")
    assert err == f"{path}: offset 16: box [1, 2, 3, 1000] is outside the square999 range 0..999\n"


def test_parse_lenient_reports_problems_in_errors(run, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("a <ref>dog</ref><box>[[1, 2, 3, 1000]]</box>")
    code, out, _ = run(f"rec parse {path}")
    assert code == 0
    assert json.loads(out)["errors"] == [
        {"message": "box [1, 2, 3, 1000] is outside the square999 range 0..999", "offset": 16}
    ]


def test_parse_compat_mode(run):
    code, out, _ = run("rec parse --mode compat", stdin="<box>[[1, 2, 3, 4]]</box>")
    assert code == 0
    assert json.loads(out)["objects"][0]["phrase"] == "Unknown"


def test_missing_input_file_is_one_line(run, tmp_path):
    code, _, err = run(f"rec parse {tmp_path / 'nope.txt'}")
    assert code == 1
    assert err.count("\n") == 1 and "cannot read" in err and "nope.txt" in err


def test_convert_box(run):
    code, out, _ = run("rec convert-box --from square999 --to raw1000 --size 640 514 290 260 835 781")
    assert (code, json.loads(out)) == (0, [290, 201, 835, 850])
    _, out, _ = run("rec convert-box --from square999 --to pixel --size 640 514 682 98 999 510")
    assert json.loads(out) == pytest.approx([436.9169, -0.2172, 640.0, 263.7267], abs=1e-4)


def test_convert_box_error_is_one_line(run):
    code, _, err = run("rec convert-box --from raw100 --to pixel --size 10 10 5 5 1 1")
    assert code == 1
    assert err == "allseeing rec: error: box [5, 5, 1, 1] has x1 > x2 or y1 > y2\n"


def test_draw_writes_overlays(run, tmp_path):
    rec = tmp_path / "example.txt"
    rec.write_text(EXAMPLE_REC.read_text())
    code, out, _ = run(f"rec draw --image {EXAMPLE_IMAGE} --out {tmp_path / 'o'} {rec}")
    assert code == 0
    result = json.loads(out)
    assert len(result["files"]) == 5 and all((tmp_path / "o").joinpath(f).exists() for f in result["files"])
    assert [o["name"] for o in result["scene_graph"]["objects"]] == ["bus", "road", "sky", "tree", "person"]


@pytest.mark.parametrize("content", [None, b"not an image at all"])
def test_draw_with_a_bad_image_fails_in_one_line(run, tmp_path, content):
    image = tmp_path / "img.png"
    if content is not None:
        image.write_bytes(content)
    code, out, err = run(f"rec draw --image {image} --out {tmp_path / 'o'}", stdin=BUS)
    assert code == 1 and out == ""
    problem = "does not exist" if content is None else "is not in an image format Pillow can read"
    assert err == f"allseeing rec: error: image {image} {problem}\n"
    assert not (tmp_path / "o").exists()


def test_flip_text_and_image(run, tmp_path):
    out_image = tmp_path / "flipped.png"
    stdin = "the <ref>tree on the left</ref><box>[[43, 207, 234, 613]]</box>"
    code, out, _ = run(f"rec flip --image {EXAMPLE_IMAGE} --image-out {out_image}", stdin=stdin)
    assert code == 0
    assert out == "the <ref>tree on the right</ref><box>[[765, 207, 956, 613]]</box>"
    original, flipped = Image.open(EXAMPLE_IMAGE).convert("RGB"), Image.open(out_image)
    assert flipped.size == (640, 514)
    assert flipped.getpixel((639 - 90, 150)) == original.getpixel((90, 150))


def test_flip_with_size(run):
    assert run("rec flip --size 513 640", stdin="<ref>x</ref><box>[[100, 5, 300, 9]]</box>")[:2] == (
        0,
        "<ref>x</ref><box>[[697, 5, 897, 9]]</box>",
    )


def test_flip_image_out_needs_an_image(run, tmp_path):
    code, _, err = run(f"rec flip --size 5 5 --image-out {tmp_path / 'x.png'}", stdin="")
    assert (code, err) == (1, "allseeing rec: error: --image-out needs --image\n")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="cannot read"):
        main(["rec", "parse", "--debug", str(tmp_path / "nope.txt")])


@pytest.mark.parametrize("command", ["", "rec", "rec parse", "rec draw", "rec convert-box", "rec flip", "quickstart"])
def test_every_verb_has_help(command):
    with pytest.raises(SystemExit) as info:
        main([*command.split(), "--help"])
    assert info.value.code == 0


def test_console_script_is_installed():
    result = subprocess.run(["allseeing", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("allseeing ")
    result = subprocess.run(
        [sys.executable, "-m", "allseeing", "rec", "parse"], input=BUS, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["caption"] == "a bus on a road"


def test_the_rec_verbs_open_images_without_numpy(tmp_path):
    """rec needs only the base dependencies (Pillow): opening an image must not import numpy."""
    script = (
        "import sys; sys.modules['numpy'] = None\n"
        "from allseeing.cli import main\n"
        f"sys.exit(main(['rec', 'draw', '--image', {str(tmp_path / 'a.png')!r}, '--out', {str(tmp_path / 'o')!r}]))"
    )
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    result = subprocess.run([sys.executable, "-c", script], input=BUS, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o").is_dir()


def test_a_zero_image_size_is_refused(run):
    with pytest.raises(SystemExit) as exit:
        run("rec parse --size 0 0", stdin=BUS)
    assert exit.value.code == 2


def test_input_that_is_not_utf8_is_an_error_not_replacement_characters(run):
    code, out, err = run("rec parse", stdin=b"<ref>a\xff</ref><box>[[1, 2, 3, 4]]</box>")
    assert (code, out) == (1, "")
    assert err.startswith("allseeing rec: error: <stdin> is not UTF-8 text") and err.count("\n") == 1
