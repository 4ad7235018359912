"""Synthetic world speed: whole datasets per second on this machine, and our renderer against a naive one.

    python benchmarks/synth.py [--scenes 2000] [--workers 2]

1. ``generate`` end to end (sampling, rendering, JPEG writing, every training task and evaluation file) with one
   process and with ``--workers`` processes, in scenes per second, and the time 10,000 training scenes take.
2. Rendering alone: ours (each object's mask drawn at 4x over its box only, then pasted) against the naive
   approach (the whole canvas drawn at 4x and downsampled), on the same scenes.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time

from PIL import Image, ImageDraw

from allseeing.data.synth import world
from allseeing.data.synth.generate import generate
from allseeing.data.synth.scenes import sample_scene


def naive_render(scene: world.Scene) -> Image.Image:
    """Baseline: draw every object on a 4x canvas and downsample the whole image."""
    k = world.SUPERSAMPLE
    big = world._background(scene).resize((scene.width * k, scene.height * k), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    for item in scene.items:
        x1, y1, x2, y2 = (v * k for v in item.pixel_box)
        colour = world.COLOURS[item.colour]
        if item.shape == "circle":
            draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour)
        elif item.shape == "square":
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
        else:
            polygon = world._POLYGONS[item.shape]
            draw.polygon([(x1 + u * (x2 - x1 - 1), y1 + v * (y2 - y1 - 1)) for u, v in polygon], fill=colour)
    return big.resize(scene.size, Image.Resampling.BOX)


def scenes_per_second(count: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        generate(out, count, 0, seed=0, workers=workers, progress=False)
        return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    one = scenes_per_second(args.scenes, 1)
    many = scenes_per_second(args.scenes, args.workers)
    scenes = [s for i in range(500) if (s := sample_scene(random.Random(f"bench/{i}"), f"b{i}"))]
    timings = {}
    for name, function in (("naive_full_canvas", naive_render), ("ours_per_object_masks", world.render)):
        start = time.perf_counter()
        for scene in scenes:
            function(scene)
        timings[name] = len(scenes) / (time.perf_counter() - start)
    report = {
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "generate_scenes_per_second": {"1 process": round(one, 1), f"{args.workers} processes": round(many, 1)},
        "parallel_speedup": round(many / one, 2),
        "minutes_for_10000_training_scenes": round(10_000 / many / 60, 2),
        "render_scenes_per_second": {name: round(value, 1) for name, value in timings.items()},
        "render_speedup_over_naive": round(timings["ours_per_object_masks"] / timings["naive_full_canvas"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
