"""Bounded YAML for user files (recipes, --config files): size, nesting depth and the size after
alias expansion are capped, duplicate keys are refused, and every error names the file.

An alias bomb (`b: &b [*a, *a, ...]` nine levels deep) composes to a small node graph; its
expanded size is counted on that graph (memoised) before anything is constructed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 64
MAX_VALUES = 100_000  # scalars + collections after alias expansion


class YamlInputError(ValueError):
    """A YAML file that cannot be read safely; the message names the file and the limit."""


def _check(node: yaml.Node, where: str) -> None:
    sizes: dict[int, tuple[int, int]] = {}

    def walk(n: yaml.Node, depth: int) -> tuple[int, int]:  # (expanded values, depth below)
        if depth > MAX_DEPTH:
            raise YamlInputError(f"{where}: nested deeper than {MAX_DEPTH} levels (line {n.start_mark.line + 1})")
        if id(n) in sizes:
            return sizes[id(n)]
        if isinstance(n, yaml.ScalarNode):
            result = (1, 0)
        else:
            children = [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else n.value
            if isinstance(n, yaml.MappingNode):
                keys = [k.value for k, _ in n.value if isinstance(k, yaml.ScalarNode)]
                dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
                if dup is not None:
                    raise YamlInputError(f"{where}: duplicate key {dup[:60]!r} (line {n.start_mark.line + 1})")
            total, deepest = 1, 0
            for c in children:
                size, below = walk(c, depth + 1)
                total += size
                deepest = max(deepest, below + 1)
                if total > MAX_VALUES:
                    raise YamlInputError(
                        f"{where}: expands to more than {MAX_VALUES} values (YAML aliases?); recipes are small"
                    )
            result = (total, deepest)
        sizes[id(n)] = result
        return result

    walk(node, 0)


def load_mapping(path: str | Path, what: str = "config") -> dict[str, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty mapping)."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise YamlInputError(f"{path}: a {what} file holds a mapping of fields, not a {type(data).__name__}")
    return data


def load_yaml(path: str | Path) -> Any:
    """The parsed content of a user's YAML file, or YamlInputError / FileNotFoundError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"file not found: {path}")
    if not path.is_file():
        raise YamlInputError(f"{path}: not a file")
    if path.stat().st_size > MAX_BYTES:
        raise YamlInputError(f"{path}: {path.stat().st_size} bytes; at most {MAX_BYTES} are read")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise YamlInputError(f"{path}: not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        _check(node, str(path))
        return yaml.safe_load(text)
    except RecursionError:
        raise YamlInputError(f"{path}: nested deeper than this parser can follow") from None
    except yaml.YAMLError as err:
        raise YamlInputError(f"{path}: not valid YAML: {str(err)[:300]}") from None
