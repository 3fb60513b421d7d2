"""docs/components.md stays true: its YAML, JSON and shell examples run, its tables match the plugins.

Conventions in the page:

- A fenced block with ``file=PATH`` in its info string (```` ```yaml file=components/orders.yaml ````)
  is written to PATH in a scratch folder, in page order.
- Every YAML block is validated once the page has run (so with the variables
  it exports): blocks under ``bad/`` must be refused, all others must load (a
  block without ``file=`` on its own, the ``components/`` folder as a whole).
- A ``console`` block is run line by line: ``$ export NAME=VALUE`` sets a
  variable; ``$ turnout ...`` runs the CLI, whose output must match the lines
  that follow. An expected line ``...`` matches any number of lines; a line
  ending in ``...`` matches any line that starts with the rest.
- Each component type's table lists exactly the fields of its metadata model.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from turnout import ComponentRegistry
from turnout._build import build_components, validate_specs
from turnout._cli import describe_fields, main
from turnout._specs import ComponentErrors, read_specs

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "components.md"


@dataclass
class Block:
    """One fenced block of the page."""

    language: str
    file: str | None
    text: str
    line: int


def blocks(text: str) -> list[Block]:
    found = []
    pattern = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    for match in pattern.finditer(text):
        options = dict(re.findall(r"(\w+)=(\S+)", match.group(2)))
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1), options.get("file"), match.group(3), line))
    return found


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` fits ``expected``, where ``...`` lines are wildcards."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    fits = actual[0].startswith(head[:-3]) if head.endswith("...") else actual[0] == head
    return fits and matches(rest, actual[1:])


def run_console(block: Block, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run a console block; returns how many turnout commands it ran."""
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"docs/components.md:{block.line}: output before any '$ ' command"
            commands[-1][1].append(line)
    ran = 0
    for command, expected in commands:
        words = shlex.split(command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, value)
            assert not expected, f"docs/components.md:{block.line}: 'export' prints nothing"
            continue
        assert words[0] == "turnout", f"docs/components.md:{block.line}: only turnout commands are run"
        result = CliRunner().invoke(main, words[1:])
        failing = bool(expected) and expected[0].startswith("Error:")
        where = f"docs/components.md:{block.line}: $ {command}"
        assert result.exit_code == (2 if failing else 0), f"{where}\n{result.output}"
        assert matches(expected, result.output.splitlines()), (
            f"{where}\nexpected:\n" + "\n".join(expected) + "\ngot:\n" + result.output
        )
        ran += 1
    return ran


def check_yaml(block: Block, registry: ComponentRegistry, scratch: Path) -> None:
    path = Path(block.file) if block.file else scratch / f"block-{block.line}.yaml"
    if not block.file:
        path.write_text(block.text, encoding="utf-8")
    where = f"docs/components.md:{block.line}"
    if path.parts[0] == "bad":
        with pytest.raises(ComponentErrors):
            validate_specs(read_specs(path, registry), working_dir=Path.cwd())
        return
    if block.file and path.parent.name == "components":
        return  # the components folder is checked as a whole (its files refer to each other)
    try:
        validate_specs(read_specs(path, registry), working_dir=Path.cwd())
    except ComponentErrors as exc:
        pytest.fail(f"{where}: the example does not load:\n{exc}")


def test_every_example_runs(
    recording_registry: ComponentRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    page = blocks(PAGE.read_text(encoding="utf-8"))
    commands = 0
    for block in page:
        if block.file:
            Path(block.file).parent.mkdir(parents=True, exist_ok=True)
            Path(block.file).write_text(block.text, encoding="utf-8")
        if block.language == "console":
            commands += run_console(block, monkeypatch)
    for block in page:
        if block.language == "yaml":
            check_yaml(block, recording_registry, scratch)
    assert sum(b.language == "yaml" for b in page) >= 6
    assert commands >= 6
    # The page's components folder loads and builds as a whole, as the runtime would.
    specs = read_specs("components", recording_registry)
    built = build_components(specs, working_dir=tmp_path, workflows=None)
    assert set(built) == {
        "orders",
        "orders-store",
        "payments",
        "payments-store",
        "local-secrets",
        "env-secrets",
    }
    payments_store = built["payments-store"][1].metadata
    assert (payments_store.connection_string, payments_store.busy_timeout_ms) == (
        ".turnout/payments.db",
        5000,
    )
    assert built["payments"][1].metadata.max_concurrent_activities == 8


def type_sections(text: str) -> dict[str, list[str]]:
    """The field names in the table under each '### `type`' heading."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        heading = re.match(r"^### `([\w.]+)`$", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
        elif line.startswith("#"):
            current = None
        elif current is not None:
            row = re.match(r"^\| `(\w+)` \|", line)
            if row:
                current.append(row.group(1))
    return sections


def test_type_tables_match_the_metadata_models(component_registry: ComponentRegistry) -> None:
    sections = type_sections(PAGE.read_text(encoding="utf-8"))
    assert set(sections) == {t.type for t in component_registry}
    for component_type in component_registry:
        expected = [field["name"] for field in describe_fields(component_type.metadata_model)]
        assert sections[component_type.type] == expected, component_type.type


def _test_messages() -> str:
    """Every exact message the component-file tests expect, joined."""
    path = Path(__file__).with_name("test_specs.py")
    spec = importlib.util.spec_from_file_location("_turnout_docs_test_specs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return "\n".join([c[2] for c in module.MALFORMED] + [c[3] for c in module.SECRET_PROBLEMS])


def _path_messages(registry: ComponentRegistry, folder: Path) -> str:
    """The messages for paths and duplicate names, made for real."""
    messages = []
    for prepare in ("missing", "empty", "duplicate"):
        target = folder / prepare / "components"
        if prepare != "missing":
            target.mkdir(parents=True)
        if prepare == "duplicate":
            text = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: orders}\n"
            text += "spec: {type: workflow.builtin, version: v1}\n"
            (target / "a.yaml").write_text(text)
            (target / "b.yaml").write_text(text)
        with pytest.raises(ComponentErrors) as raised:
            read_specs(target, registry)
        messages.append(str(raised.value).replace(f"{folder / prepare}/", ""))
    return "\n".join(messages)


def test_the_rule_table_quotes_real_messages(component_registry: ComponentRegistry, tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index("| Rule | Message |") :]
    table = table[: table.index("\n\n")]
    known = _test_messages() + "\n" + _path_messages(component_registry, tmp_path)
    samples = re.findall(r"`([^`]+)`", "\n".join(row.split(" | ", 1)[1] for row in table.splitlines()[2:]))
    assert len(samples) >= 20
    for sample in samples:
        for fragment in (f.strip(" ;,") for f in sample.split("...")):
            assert fragment in known, f"docs/components.md quotes a message no test produces: {fragment!r}"
