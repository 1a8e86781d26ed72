"""CI, workflows, releases, the lock file and the root README stay consistent with the workspace."""

from __future__ import annotations

import re
import shutil
import subprocess

import yaml
from conftest import MEMBERS, ROOT

import noxfile

WORKFLOWS = ROOT / ".github" / "workflows"
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAPERS = (
    "advsep",
    "pinn-linf",
    "urpe",
    "metro-lm",
    "graphormer2",
    "vad-asr",
    "pinn-stein",
    "house-kge",
    "portal-learning",
)


def readme_commands() -> list[str]:
    """The one-line commands in the README's 'Two commands' section, in order."""
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh|console)?\n(.+?)\n```", section)


def test_package_workflows_are_generated_from_the_template() -> None:
    wanted = noxfile.render_workflows(MEMBERS)
    present = {p.name for p in WORKFLOWS.glob(f"{noxfile.PACKAGE_WORKFLOW_PREFIX}*.yml")}
    assert present == set(wanted), (
        f"package workflows {sorted(present)} != members {sorted(wanted)}: run `nox -s workflows`"
    )
    for name, text in wanted.items():
        assert (WORKFLOWS / name).read_text(encoding="utf-8") == text, (
            f"{name} drifted from the template: run `nox -s workflows`"
        )


def test_package_workflows_test_their_member_on_both_pythons() -> None:
    for member in MEMBERS:
        flow = yaml.safe_load((WORKFLOWS / f"{noxfile.PACKAGE_WORKFLOW_PREFIX}{member.name}.yml").read_text())
        on = flow[True]  # YAML 1.1 reads the key `on` as a boolean
        own = "shared/**" if not member.is_paper else f"packages/{member.name}/**"
        for event in ("push", "pull_request"):
            assert {own, "shared/**", "noxfile.py", "uv.lock"} <= set(on[event]["paths"])
        job = flow["jobs"]["test"]
        assert job["strategy"]["matrix"]["python"] == ["3.10", "3.12"]
        run = " ".join(step.get("run", "") for step in job["steps"])
        assert f"tests-{member.name}" in run
        assert f"wheel-{member.name}" in run
        if member.apt:
            assert all(package in run for package in member.apt)


def test_lint_and_workspace_workflow() -> None:
    flow = yaml.safe_load((WORKFLOWS / "workspace.yml").read_text())
    runs = " ".join(step.get("run", "") for job in flow["jobs"].values() for step in job["steps"])
    assert "-s lint" in runs
    assert "-s workspace" in runs


def test_release_workflow_builds_one_package_from_its_tag() -> None:
    text = (WORKFLOWS / "release.yml").read_text()
    flow = yaml.safe_load(text)
    assert flow[True]["push"]["tags"] == ["*-v*"]
    assert 'uv build --package "$package"' in text
    publish = flow["jobs"]["publish"]
    assert publish["permissions"]["id-token"] == "write", "trusted publishing needs id-token: write"
    # The shell that splits the tag gives the member name and version for every member.
    script = re.search(r"package=.*\n.*version=.*", text).group(0).strip()
    for member in MEMBERS:
        tag = f"{member.name}-v{member.version}"
        out = subprocess.run(
            ["bash", "-c", f'GITHUB_REF_NAME="{tag}"\n{script}\necho "$package $version"'],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split() == [member.name, member.version]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    assert len(commands) == 2, f"README's 'Two commands' section must hold two commands, found {commands}"
    main, tests = commands
    assert "nox -s reproduce" in main
    assert tests.rstrip().endswith("nox")
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8"), (
        ".ci/run must run the README's test command"
    )


def test_readme_lists_the_nine_packages() -> None:
    block = README.split("<!-- status:begin -->", 1)[1].split("<!-- status:end -->", 1)[0]
    rows = re.findall(r"^\|\s*(\[`([a-z0-9-]+)`\]\(([^)\s]+)\)|`([a-z0-9-]+)`)", block, re.M)
    assert [linked or plain for _, linked, _, plain in rows] == list(PAPERS)
    for _, name, target, _ in rows:  # a released package's row links to its README
        if name:
            assert (ROOT / target).is_file(), (
                f"README: the row of {name} links to {target}, which does not exist"
            )


def test_debian_packages_are_installed_by_ci_and_named_in_readme() -> None:
    listed = {
        line.split("#", 1)[0].strip()
        for line in (ROOT / ".ci" / "apt-packages").read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip()
    }
    for member in MEMBERS:
        assert set(member.apt) <= listed, (
            f"{member.rel}: Debian packages {member.apt} missing from .ci/apt-packages"
        )
        for package in member.apt:
            assert package in README, f"README must name the Debian package {package}"


def test_uv_lock_is_current() -> None:
    uv = shutil.which("uv")
    assert uv, "uv must be installed in the workspace session (dependency group 'test')"
    result = subprocess.run([uv, "lock", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"uv.lock is stale: run `uv lock`\n{result.stderr}"
