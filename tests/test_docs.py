"""The docs cannot drift from the code: the README stays short and names every command,
links resolve, docs/architecture.md names every package with its layer, and docs/cli.md is what
``cog -r docs/cli.md`` writes today."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import REPO, cli_env, require

from simsearch.cli.commands import COMMANDS

README = REPO / "README.md"
DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_has_at_most_300_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 300


def test_the_readme_commands_table_links_every_command():
    text = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\(docs/cli\.md#([a-z]+)\)", text))
    assert linked == set(COMMANDS)


@pytest.mark.parametrize(
    "page", [README, *sorted(DOCS.glob("*.md")), REPO / "tests" / "README.md"], ids=str
)
def test_relative_links_resolve(page):
    """Every relative link of a page points at a file that exists (anchors aside)."""
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name}: {target}"


def _anchors(page):
    """The anchors of a page as GitHub makes them: each heading's slug, and explicit ids."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # headings inside code are not headings
    anchors = set(re.findall(r'<a id="([^"]+)"', text))
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=str)
def test_anchors_of_links_exist(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        linked = (page.parent / file).resolve() if file else page
        if linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def test_the_architecture_page_names_every_package():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    source = REPO / "src" / "simsearch"
    packages = [p.name + "/" for p in source.iterdir() if (p / "__init__.py").exists()]
    modules = [p.name for p in source.glob("*.py") if p.name not in {"__main__.py"}]
    missing = [name for name in packages + modules if f"`{name}`" not in text]
    assert not missing


def test_the_architecture_page_gives_each_package_its_layer_in_pyproject():
    """The layer numbers of docs/architecture.md are those of ``[tool.importlinter]``'s
    layers contract (``lint-imports`` enforces it in CI), counted from the bottom."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(
        c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    expected = {
        name.strip(): level
        for level, layer in enumerate(reversed(contract["layers"]))
        for name in layer.split("|")
    }
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\d+) \| `([\w.]+?)(?:/|\.py)?` \|", text, flags=re.M)
    documented = {name: int(level) for level, name in table}
    assert documented == expected


@pytest.mark.parametrize("page", ["docs/cli.md", "docs/python-api.md"])
def test_generated_docs_are_what_cog_writes(page):
    """The same check as ``.ci/run``: regenerate with ``cog -r docs/*.md``."""
    require("cogapp")
    done = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", page],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
