"""The README's first command: the ReC pipeline on the bundled example."""

import json

from allseeing.cli import main


def test_quickstart_prints_the_scene_graph_and_writes_the_files(capsys, tmp_path):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    result = json.loads(stdout)
    assert result["parse"]["errors"] == []
    triplets = [(t["subject"], t["predicate"], t["object"]) for t in result["parse"]["triplets"]]
    assert triplets == [
        ("bus", "driving on", "road"),
        ("bus", "under", "sky"),
        ("tree", "beside", "road"),
        ("person", "standing next to", "bus"),
    ]
    assert "bus --driving on--> road" in stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            "objects.png",
            "relation_00_bus_driving-on_road.png",
            "relation_01_bus_under_sky.png",
            "relation_02_tree_beside_road.png",
            "relation_03_person_standing-next-to_bus.png",
            "scene_graph.json",
            "scene_graph.dot",
        ]
    )
    assert json.loads((out / "scene_graph.json").read_text()) == result["scene_graph"]
