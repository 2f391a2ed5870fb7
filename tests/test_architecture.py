"""The README's architecture table is the rendering of pyproject.toml's import contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import architecture


def test_the_readme_shows_the_contracts_as_they_are() -> None:
    assert architecture.readme_block() == architecture.block(architecture.render()), (
        "README.md's architecture table differs from [tool.importlinter] in pyproject.toml;"
        " regenerate it: .venv/bin/python -m bot.architecture --write"
    )


def test_a_changed_contract_changes_the_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        (architecture.ROOT / "pyproject.toml")
        .read_text()
        .replace('forbidden_modules = ["adapters"]', 'forbidden_modules = ["adapters", "audio"]')
    )
    before, after = architecture.render(), architecture.render(pyproject)
    columns = next(line for line in after.splitlines() if line.startswith("may import")).split()[3:]
    row = next(line for line in after.splitlines() if line.startswith("billing "))
    cells = dict(zip(columns, row.split()[1:], strict=True))
    # billing may not import audio now, by the same contract that keeps it from the adapters
    assert cells["audio"] == cells["discord"] != "·" and row != next(
        line for line in before.splitlines() if line.startswith("billing ")
    )


def test_write_puts_the_table_between_the_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{architecture.BEGIN}\nold\n{architecture.END}\n\nAfter.\n")
    assert architecture.write(readme)
    assert architecture.readme_block(readme) == architecture.block(architecture.render())
    assert readme.read_text().endswith("\n\nAfter.\n")
    assert not architecture.write(readme)  # already up to date


def test_a_contract_kind_it_cannot_draw_is_an_error(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.importlinter]\nroot_packages = ["bot"]\n'
        '[[tool.importlinter.contracts]]\nname = "L"\ntype = "layers"\nlayers = ["bot"]\n'
    )
    with pytest.raises(ValueError, match="cannot draw type 'layers'"):
        architecture.render(pyproject)
