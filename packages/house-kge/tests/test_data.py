"""Dataset directories in the RotatE-toolkit layout, named datasets, and subsampling weights."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from house_kge import KnowledgeGraph, load_dataset, load_directory, subsampling_weights
from house_kge.data import DOWNLOAD_FILES, shipped_dataset

from papers_common import InputError

TRAIN = [("a", "likes", "b"), ("b", "likes", "c"), ("c", "knows", "a"), ("d", "knows", "b")]
VALID = [("a", "knows", "c")]
TEST = [("b", "likes", "d"), ("d", "likes", "a")]


def test_load_directory_assigns_ids_in_order_of_first_appearance(dataset_dir) -> None:
    graph = load_directory(dataset_dir(TRAIN, VALID, TEST))
    assert isinstance(graph, KnowledgeGraph)
    assert graph.name == "tiny"
    assert graph.entities == ["a", "b", "c", "d"]
    assert graph.relations == ["likes", "knows"]
    assert graph.train.dtype == torch.long
    assert graph.train.tolist() == [[0, 0, 1], [1, 0, 2], [2, 1, 0], [3, 1, 1]]
    assert graph.valid.tolist() == [[0, 1, 2]]
    assert graph.test.tolist() == [[1, 0, 3], [3, 0, 0]]
    assert graph.skipped == {}
    assert graph.regions is None
    assert (graph.num_entities, graph.num_relations) == (4, 2)
    assert graph.all_triples().shape == (7, 3)
    assert graph.entity_id("c") == 2
    assert graph.relation_id("knows") == 1
    assert graph.describe()["train"] == 4


def test_dictionaries_fix_the_id_order(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, entities=["d", "c", "b", "a", "e"], relations=["knows", "likes"])
    graph = load_directory(root, name="custom")
    assert graph.name == "custom"
    assert graph.entities == ["d", "c", "b", "a", "e"]
    assert graph.relations == ["knows", "likes"]
    assert graph.train.tolist() == [[3, 1, 2], [2, 1, 1], [1, 0, 3], [0, 0, 2]]
    assert graph.test.tolist() == [[2, 1, 0], [0, 1, 3]]


def test_whitespace_and_blank_lines_are_tolerated(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST)
    (root / "train.txt").write_text("a\tlikes\tb\r\n\n  \nb\tlikes\tc \n", encoding="utf-8")
    graph = load_directory(root)
    assert graph.train.tolist() == [[0, 0, 1], [1, 0, 2]]


def test_malformed_line_names_the_file_and_line(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST)
    (root / "train.txt").write_text("a\tlikes\tb\nb\tlikes\tc\nc\tknows\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("train.txt:3")) as error:
        load_directory(root)
    assert "2 field(s)" in str(error.value)


def test_four_columns_are_an_error_too(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST)
    (root / "valid.txt").write_text("a\tknows\tc\textra\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("valid.txt:1")):
        load_directory(root)


def test_empty_file_is_an_error(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST)
    (root / "test.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test\.txt: no triples"):
        load_directory(root)


def test_missing_split_and_missing_directory_are_errors(dataset_dir, tmp_path: Path) -> None:
    root = dataset_dir(TRAIN, VALID, TEST)
    (root / "valid.txt").unlink()
    with pytest.raises(InputError, match=re.escape("missing valid.txt")):
        load_directory(root)
    with pytest.raises(InputError, match="no such dataset directory"):
        load_directory(tmp_path / "nowhere")


def unseen_dataset(dataset_dir) -> Path:
    """Valid: one triple with an entity (zebra) that train never mentions; test: one more, and one with a relation
    (hates) that train never mentions."""
    test = [*TEST, ("a", "likes", "zebra"), ("b", "hates", "c")]
    return dataset_dir(TRAIN, [*VALID, ("zebra", "knows", "a")], test)


def test_unseen_entities_are_kept_and_ranked_by_default(dataset_dir) -> None:
    """The official protocol: every entity of any split has an embedding and every test triple is ranked."""
    graph = load_directory(unseen_dataset(dataset_dir))
    assert graph.entities == ["a", "b", "c", "d", "zebra"]
    assert graph.relations == ["likes", "knows", "hates"]
    assert graph.valid.tolist() == [[0, 1, 2], [4, 1, 0]]
    assert graph.test.tolist() == [[1, 0, 3], [3, 0, 0], [0, 0, 4], [1, 2, 2]]
    assert graph.unseen == {"valid": 1, "test": 2}
    assert graph.skipped == {}
    assert graph.describe()["unseen"] == {"valid": 1, "test": 2}


def test_unseen_entities_are_dropped_on_request(dataset_dir) -> None:
    graph = load_directory(unseen_dataset(dataset_dir), unseen="drop")
    assert graph.skipped == {"valid": 1, "test": 2}
    assert graph.unseen == {"valid": 1, "test": 2}
    assert graph.test.tolist() == [[1, 0, 3], [3, 0, 0]]
    assert graph.valid.tolist() == [[0, 1, 2]]
    assert graph.describe()["skipped"] == {"valid": 1, "test": 2}
    assert graph.num_entities == 5  # the vocabulary does not depend on the choice


def test_unseen_entities_are_an_error_on_request(dataset_dir) -> None:
    with pytest.raises(InputError, match=re.escape("valid.txt: triple 2 (zebra, knows, a)")):
        load_directory(unseen_dataset(dataset_dir), unseen="error")
    with pytest.raises(InputError, match="unseen must be one of keep, drop, error"):
        load_directory(unseen_dataset(dataset_dir), unseen="ignore")  # type: ignore[arg-type]


def test_test_entity_outside_the_dictionary_has_no_embedding(dataset_dir) -> None:
    """With entities.dict, a test entity it lacks cannot be ranked: an error, unless such triples are dropped."""
    root = dataset_dir(
        TRAIN,
        VALID,
        [*TEST, ("a", "likes", "zebra")],
        entities=["a", "b", "c", "d"],
        relations=["likes", "knows"],
    )
    with pytest.raises(InputError, match=re.escape("test.txt: triple 3 (a, likes, zebra)")):
        load_directory(root)
    assert load_directory(root, unseen="drop").skipped == {"test": 1}


def test_wn18rr_keeps_every_test_triple() -> None:
    """WN18RR's official split: 210 of its 3,134 test triples mention an entity absent from training."""
    root = Path(__file__).resolve().parents[4] / "shared" / "data" / "kg" / "wn18rr"  # beside the checkout
    if not root.is_dir():
        pytest.skip("no WN18RR copy in ../shared/data/kg")
    graph = load_directory(root)
    assert graph.test.shape == (3134, 3)
    assert graph.unseen["test"] == 210
    assert graph.num_entities == 40943


def test_non_utf8_bytes_name_the_file_and_line(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, entities=["a", "b", "c", "d"], relations=["likes", "knows"])
    train = root / "train.txt"
    train.write_bytes(train.read_bytes().replace(b"c\tknows", b"\xe7\tknows"))  # latin-1 "ç" on line 3
    with pytest.raises(InputError, match=re.escape(f"{train}:3: not UTF-8 text (byte 0xe7 at column 1)")):
        load_directory(root)
    dataset_dir(TRAIN, VALID, TEST, entities=["a", "b", "c", "d"])
    entities = root / "entities.dict"
    entities.write_bytes(b"0\ta\n1\tb\n2\tgar\xe7on\n3\td\n")
    with pytest.raises(InputError, match=re.escape(f"{entities}:3: not UTF-8 text (byte 0xe7 at column 6)")):
        load_directory(root)


@pytest.mark.parametrize(
    ("name", "train"), [("countries_S1", 1111), ("countries_S2", 1063), ("countries_S3", 985)]
)
def test_countries_ship_with_the_package(name: str, train: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    graph = load_dataset(name)
    assert (graph.name, graph.num_entities, graph.num_relations) == (name, 271, 2)
    assert [len(graph.train), len(graph.valid), len(graph.test)] == [train, 24, 24]
    assert graph.regions is not None
    assert len(graph.regions) == 5
    assert load_dataset(name.lower()).entities == graph.entities
    shipped = shipped_dataset(name)
    assert (shipped.parent / "README.md").is_file()  # the source and licence beside the files


def test_entity_missing_from_the_dictionary_is_an_error_in_train(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, entities=["a", "b", "c"], relations=["likes", "knows"])
    with pytest.raises(InputError, match=re.escape("train.txt")):
        load_directory(root)


def test_dictionary_with_a_gap_is_an_error(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, relations=["likes", "knows"])
    (root / "entities.dict").write_text("0\ta\n1\tb\n3\tc\n4\td\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("entities.dict")):
        load_directory(root)


def test_regions_list_is_read(dataset_dir) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, regions=["d", "b"])
    graph = load_directory(root)
    assert graph.regions is not None
    assert graph.regions.tolist() == [3, 1]
    (root / "regions.list").write_text("d\natlantis\n", encoding="utf-8")
    with pytest.raises(InputError, match="atlantis"):
        load_directory(root)


def test_unknown_named_dataset_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no directory of that name here
    with pytest.raises(InputError, match=re.escape("unknown dataset 'no-such-graph'")):
        load_dataset("no-such-graph")


def test_load_dataset_from_a_data_dir_and_from_a_path(dataset_dir, tmp_path: Path) -> None:
    root = dataset_dir(TRAIN, VALID, TEST, name="mygraph")
    graph = load_dataset("mygraph", data_dir=tmp_path)
    assert graph.name == "mygraph"
    assert graph.train.shape == (4, 3)
    assert load_dataset(str(root)).entities == graph.entities
    with pytest.raises(InputError, match="no such dataset directory"):
        load_dataset("other", data_dir=tmp_path)


def official_count_frequency(triples: list[tuple[int, int, int]], start: int = 4) -> dict:
    """The toolkit's counts of (head, relation) and (tail, −relation − 1), each starting at ``start``."""
    count: dict[tuple[int, int], int] = {}
    for head, relation, tail in triples:
        count[(head, relation)] = count.get((head, relation), start - 1) + 1
        count[(tail, -relation - 1)] = count.get((tail, -relation - 1), start - 1) + 1
    return count


def test_subsampling_weights_equal_the_toolkit_counts() -> None:
    generator = torch.Generator().manual_seed(0)
    triples = torch.stack(
        [
            torch.randint(6, (80,), generator=generator),
            torch.randint(3, (80,), generator=generator),
            torch.randint(6, (80,), generator=generator),
        ],
        dim=1,
    )
    rows = [tuple(row) for row in triples.tolist()]
    count = official_count_frequency(rows)
    expected = torch.tensor([math.sqrt(1 / (count[(h, r)] + count[(t, -r - 1)])) for h, r, t in rows])
    weights = subsampling_weights(triples, num_relations=3)
    assert weights.shape == (80,)
    torch.testing.assert_close(weights, expected.float(), rtol=1e-6, atol=0)


def test_subsampling_weight_of_a_lonely_triple() -> None:
    """One triple: both counts are 4, so w = sqrt(1/8); a head used as a tail does not share its count."""
    weights = subsampling_weights(torch.tensor([[0, 0, 1], [1, 0, 0]]), num_relations=1)
    # (0, r) and (1, r⁻¹) count 1 + 3 each for the first triple; the second mirrors it
    torch.testing.assert_close(weights, torch.full((2,), math.sqrt(1 / 8)))
    weights = subsampling_weights(torch.tensor([[0, 0, 1], [0, 0, 2]]), num_relations=1)
    # (0, r) occurs twice: 5 + 4
    torch.testing.assert_close(weights, torch.full((2,), math.sqrt(1 / 9)))


def test_named_download_is_fetched_once_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wn18rr without --data-dir: the files come from the mirror URL into the cache, then from the cache."""
    mirror = tmp_path / "mirror" / "wn18rr"
    mirror.mkdir(parents=True)
    splits = {"train.txt": TRAIN, "valid.txt": VALID, "test.txt": TEST}
    for file, rows in splits.items():
        (mirror / file).write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in rows), encoding="utf-8")
    entities = sorted({e for rows in splits.values() for h, _, t in rows for e in (h, t)})
    relations = sorted({r for rows in splits.values() for _, r, _ in rows})
    (mirror / "entities.dict").write_text(
        "".join(f"{i}\t{e}\n" for i, e in enumerate(entities)), encoding="utf-8"
    )
    (mirror / "relations.dict").write_text(
        "".join(f"{i}\t{r}\n" for i, r in enumerate(relations)), encoding="utf-8"
    )
    monkeypatch.setenv("HOUSE_KGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOUSE_KGE_DATA_URL", (tmp_path / "mirror").as_uri())
    graph = load_dataset("wn18rr")
    assert graph.entities == entities
    assert graph.train.shape == (len(TRAIN), 3)
    assert sorted(p.name for p in (tmp_path / "cache" / "wn18rr").iterdir()) == sorted(DOWNLOAD_FILES)
    monkeypatch.setenv(
        "HOUSE_KGE_DATA_URL", (tmp_path / "nowhere").as_uri()
    )  # a second load reads the cache only
    assert load_dataset("wn18rr").entities == entities


def test_failed_download_says_how_to_use_a_local_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOUSE_KGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOUSE_KGE_DATA_URL", (tmp_path / "nowhere").as_uri())
    with pytest.raises(InputError, match=r"could not download .*FB15k-237/train\.txt.*--data-dir"):
        load_dataset("fb15k-237")
    assert not (tmp_path / "cache" / "fb15k-237").exists()
