"""Every member says how to cite it: a CITATION.cff shipped in its sdist and a README "Citing" section.

A paper package's ``CITATION.cff`` describes the software (its name, version and license as in ``pyproject.toml``)
with the paper as ``preferred-citation``; its README gives the same paper as BibTeX. ``papers-common`` cites
itself only.
"""

from __future__ import annotations

import re

import yaml
from conftest import ROOT

import noxfile

ARXIV = re.compile(r"^https://arxiv\.org/abs/\d{4}\.\d{4,5}$")


def cff(member: noxfile.Member) -> dict:
    path = member.path / "CITATION.cff"
    assert path.is_file(), f"{member.rel}: no CITATION.cff"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{member.rel}/CITATION.cff: not a YAML mapping"
    return data


def citing_section(member: noxfile.Member) -> str:
    text = (member.path / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Citing\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found, f"{member.rel}/README.md: no '## Citing' section"
    return found.group(1)


def test_the_software_is_described_as_in_pyproject(member: noxfile.Member) -> None:
    data, project = cff(member), noxfile.read_toml(member.path / "pyproject.toml")["project"]
    assert data.get("cff-version") == "1.2.0", f"{member.rel}/CITATION.cff: cff-version must be 1.2.0"
    assert data.get("type") == "software"
    assert data.get("message"), f"{member.rel}/CITATION.cff: a message saying how to cite is required"
    assert str(data.get("version")) == project["version"], (
        f"{member.rel}/CITATION.cff: version {data.get('version')} but pyproject.toml says {project['version']}"
    )
    assert data.get("license") == project["license"]
    assert str(data.get("title", "")).startswith(f"{project['name']}: ")
    assert data.get("authors")
    assert all(a.get("name") or a.get("family-names") for a in data["authors"])


def test_paper_packages_prefer_their_paper(member: noxfile.Member) -> None:
    data = cff(member)
    paper = data.get("preferred-citation")
    if not member.is_paper:
        assert paper is None, f"{member.rel}/CITATION.cff: papers-common implements no paper"
        return
    assert isinstance(paper, dict), f"{member.rel}/CITATION.cff: no preferred-citation (the paper)"
    assert paper.get("type") in ("conference-paper", "article", "report")
    assert paper.get("title")
    assert isinstance(paper.get("year"), int)
    assert ARXIV.match(str(paper.get("url", ""))), (
        f"{member.rel}/CITATION.cff: url must be the paper's arXiv page"
    )
    authors = paper.get("authors") or []
    assert authors
    assert all(a.get("family-names") and a.get("given-names") for a in authors)
    assert paper.get("collection-title") or paper.get("journal"), "where the paper appeared"


def test_the_readme_gives_the_papers_bibtex(member: noxfile.Member) -> None:
    section = citing_section(member)
    assert "CITATION.cff" in section
    if not member.is_paper:
        return
    paper = cff(member)["preferred-citation"]
    blocks = re.findall(r"```bibtex\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"{member.rel}/README.md: the Citing section needs one ```bibtex block"
    entry = blocks[0]
    assert re.match(r"@(inproceedings|article|misc)\{\w+,", entry)
    arxiv = paper["url"].rsplit("/", 1)[1]
    assert f"eprint = {{{arxiv}}}" in entry, (
        f"{member.rel}/README.md: BibTeX and CITATION.cff name other papers"
    )
    first = paper["authors"][0]
    assert f"author = {{{first['family-names']}, {first['given-names']}" in entry
    assert str(paper["year"]) in entry


def test_the_sdist_ships_it(member: noxfile.Member) -> None:
    backend = (
        noxfile.read_toml(member.path / "pyproject.toml")
        .get("tool", {})
        .get("uv", {})
        .get("build-backend", {})
    )
    assert "CITATION.cff" in backend.get("source-include", []), (
        f'{member.rel}/pyproject.toml: [tool.uv.build-backend] source-include = ["CITATION.cff"] ships it in the sdist'
    )


def test_the_root_readme_says_how_to_cite_the_collection() -> None:
    assert "\n## Citing\n" in (ROOT / "README.md").read_text(encoding="utf-8")
