#!/usr/bin/env python3
"""Fails when the source files of one crate import each other in a circle.

For every workspace member, the module tree is read from src/lib.rs and src/main.rs through
their `mod name;` declarations (`#[path]` is not used in this workspace). An edge A -> B is
drawn when file A names an item of file B by a path that starts with `crate::`, `super::`,
`self::` or the name of one of A's own child modules (2018-edition relative paths), in a `use`
statement (braces expanded) or anywhere in the code (`crate::call::retry(...)`). The path is
walked down the module tree as far as it goes; when it stops at a module that re-exports the
named item (`pub use child::Item;`, `pub use child::*;`), the edge goes on to the file the
item comes from, so a crate root's re-exports create no false circle. A `mod` declaration is
not an edge, nor is a path to the file's own module or one of its ancestors (a child may use
what the modules around it define, as Rust's privacy lets it; `super::*` in a child is no
circle), and `super::` inside an inline `mod tests { ... }` means the file itself. `$crate::`
paths in macros are not edges (they expand elsewhere). Comments and string literals are
stripped first.

Circles (strongly connected components of more than one file) are printed with one path
through them; the exit status is 1 if any is not listed in scripts/import-cycles.allow
(one line per circle: its files, space separated, relative to the repository).

    python3 scripts/import-cycles.py          # the whole workspace
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOW = ROOT / "scripts" / "import-cycles.allow"

MOD_DECL = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{", re.M)
USE_STMT = re.compile(r"^\s*((?:pub(?:\([^)]*\))?\s+)?)use\s+([^;]+);", re.M)
INLINE_PATH = re.compile(r"(?<![\w:$])((?:crate|super|self)(?:::(?:\w+))+)")


def strip(text: str) -> str:
    """Source text without comments, string or char literals (lengths kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + len(hashes) + 2)
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand(tree: str) -> list[str]:
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (aliases dropped)."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    depth, start = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1 : i], tree[i + 1 :]
                parts, d, s = [], 0, 0
                for k, ch in enumerate(inner):
                    if ch in "{":
                        d += 1
                    elif ch == "}":
                        d -= 1
                    elif ch == "," and d == 0:
                        parts.append(inner[s:k])
                        s = k + 1
                parts.append(inner[s:])
                return [p for part in parts if part for p in expand(prefix + part + rest)]
    return [tree]


def clean(path: str) -> str:
    """A `use` path without its alias (`a::B as C`) or a trailing `::self`."""
    path = re.sub(r"\s+as\s+\w+$", "", path.strip())
    return re.sub(r"::self$", "", path)


class Module:
    def __init__(self, path: tuple[str, ...], file: Path):
        self.path, self.file, self.children = path, file, {}


def children_dir(file: Path) -> Path:
    if file.name in ("lib.rs", "main.rs", "mod.rs"):
        return file.parent
    return file.parent / file.stem


def load_tree(root_file: Path) -> dict[tuple[str, ...], Module]:
    modules: dict[tuple[str, ...], Module] = {}

    def visit(path: tuple[str, ...], file: Path) -> None:
        module = Module(path, file)
        modules[path] = module
        text = strip(file.read_text())
        for name in MOD_DECL.findall(text):
            base = children_dir(file)
            for candidate in (base / f"{name}.rs", base / name / "mod.rs"):
                if candidate.exists():
                    module.children[name] = path + (name,)
                    visit(path + (name,), candidate)
                    break

    visit((), root_file)
    return modules


def inline_spans(text: str) -> list[tuple[int, int]]:
    """Spans of inline `mod x { ... }` blocks (top level only)."""
    spans = []
    for m in INLINE_MOD.finditer(text):
        if spans and m.start() < spans[-1][1]:
            continue
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        spans.append((m.start(), i))
    return spans


def reexports(module: Module) -> dict[str, str]:
    """Names `module` re-exports (`pub use a::b::Name;`) -> the path they come from; `*` for
    glob re-exports, mapped to a list."""
    found: dict[str, list[str]] = {}
    text = strip(module.file.read_text())
    for vis, tree in USE_STMT.findall(text):
        if not vis.strip():
            continue
        for path in expand(tree):
            alias = re.search(r"\s+as\s+(\w+)$", path)
            path = clean(path)
            name = alias.group(1) if alias else path.split("::")[-1]
            found.setdefault(name, []).append(path)
    return found


def resolve(modules, start: tuple[str, ...], segments: list[str], seen=None) -> Path | None:
    """The file an item path names, from module `start` (the path's first segment already
    turned into `start`)."""
    seen = seen or set()
    module = modules.get(start)
    if module is None:
        return None
    i = 0
    while i < len(segments) and segments[i] in module.children:
        module = modules[module.children[segments[i]]]
        i += 1
    if i >= len(segments) or segments[i] == "*":
        return module.file
    name = segments[i]
    key = (module.path, name)
    if key in seen:
        return module.file
    seen.add(key)
    for path in reexports(module).get(name, []):
        if is_external(modules, module.path, path):
            return None
        target = resolve_path(modules, module.path, path, seen)
        if target is not None:
            return target
    return module.file


def is_external(modules, current: tuple[str, ...], path: str) -> bool:
    """Whether `path` leaves the crate (`dashu_int::UBig`, `std::...`)."""
    head = path.split("::")[0]
    module = modules.get(current)
    return head not in ("crate", "self", "super") and (module is None or head not in module.children)


def resolve_path(modules, current: tuple[str, ...], path: str, seen=None) -> Path | None:
    segments = [s for s in path.split("::") if s]
    if not segments:
        return None
    head, rest = segments[0], segments[1:]
    if head == "crate":
        return resolve(modules, (), rest, seen)
    if head == "self":
        return resolve(modules, current, rest, seen)
    if head == "super":
        base = current
        while segments and segments[0] == "super":
            if not base:
                return None
            base = base[:-1]
            segments = segments[1:]
        return resolve(modules, base, segments, seen)
    module = modules.get(current)
    if module is not None and head in module.children:
        return resolve(modules, module.children[head], rest, seen)
    return None


def edges_of(modules, module: Module) -> set[Path]:
    text = strip(module.file.read_text())
    spans = inline_spans(text)
    targets: set[Path] = set()
    # A module may use what the modules around it define (Rust shows a parent's private
    # items to its children): an edge to the file itself or an ancestor is not counted.
    ancestors = {modules[module.path[:k]].file for k in range(len(module.path) + 1)}

    def context(offset: int) -> tuple[str, ...]:
        # `super::` inside an inline module means this file's module.
        for start, end in spans:
            if start <= offset <= end:
                return module.path + ("<inline>",)
        return module.path

    def add(current, path):
        if current and current[-1] == "<inline>":
            current = current[:-1]
            if path.startswith("super::"):
                path = "self::" + path[len("super::") :]
        target = resolve_path(modules, current, path)
        if target is None or target in ancestors:
            return
        targets.add(target)

    used = []
    for m in USE_STMT.finditer(text):
        used.append((m.start(), m.end()))
        for path in expand(m.group(2)):
            add(context(m.start()), clean(path))
    for m in INLINE_PATH.finditer(text):
        if any(a <= m.start() < b for a, b in used):
            continue
        add(context(m.start()), m.group(1))
    return targets


def circles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def one_cycle(graph, component: list[Path]) -> list[Path]:
    """A shortest path from the component's first file back to itself, inside it."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while previous[path[-1]] is not None:
                        path.append(previous[path[-1]])
                    return list(reversed(path)) + [start]
                if w in members and w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    return component


def members() -> list[Path]:
    manifest = (ROOT / "Cargo.toml").read_text()
    block = re.search(r"members\s*=\s*\[(.*?)\]", manifest, re.S).group(1)
    return [ROOT / m for m in re.findall(r'"([^"]+)"', block)]


def main() -> int:
    if len(sys.argv) > 1:
        # `import-cycles.py FILE`: the edges of one file, to see why a circle is one.
        wanted = Path(sys.argv[1]).resolve()
        for crate in members():
            for root in ("src/lib.rs", "src/main.rs"):
                if (crate / root).exists() and str(wanted).startswith(str(crate)):
                    modules = load_tree(crate / root)
                    for m in modules.values():
                        if m.file == wanted:
                            for target in sorted(edges_of(modules, m)):
                                print(target.relative_to(ROOT))
        return 0
    allowed = set()
    if ALLOW.exists():
        for line in ALLOW.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                allowed.add(frozenset(line.split()))
    failed, seen_allowed = False, set()
    for crate in members():
        for root in ("src/lib.rs", "src/main.rs"):
            root_file = crate / root
            if not root_file.exists():
                continue
            modules = load_tree(root_file)
            graph = {m.file: edges_of(modules, m) for m in modules.values()}
            for component in circles(graph):
                names = [str(f.relative_to(ROOT)) for f in component]
                cycle = " -> ".join(str(f.relative_to(ROOT)) for f in one_cycle(graph, component))
                key = frozenset(names)
                if key in allowed:
                    seen_allowed.add(key)
                    print(f"allowed circle of {len(names)} files: {cycle}")
                    continue
                failed = True
                print(f"import circle of {len(names)} files in {crate.relative_to(ROOT)}: {cycle}")
                if len(names) > 2:
                    print("  files: " + " ".join(names))
    for stale in allowed - seen_allowed:
        print("note: scripts/import-cycles.allow lists a circle that is gone: " + " ".join(sorted(stale)))
    if not failed:
        print("no import circle between the files of any crate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
