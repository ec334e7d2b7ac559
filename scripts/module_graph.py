#!/usr/bin/env python3
"""Prints each crate's graph of top-level modules (which module uses which, through `crate::`
paths in code, names the crate root re-exports resolved to their module; comments and doc links do
not count) and fails when a crate's modules form a cycle.

Usage: scripts/module_graph.py [--quiet] [ROOT]   (ROOT: the repository, default this one; exit 1 on a
cycle)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
if ARGS:
    ROOT = pathlib.Path(ARGS[0]).resolve()
USE = re.compile(r"\bcrate::(\w+)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def crates():
    for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")) + sorted(ROOT.glob("services/*/Cargo.toml")):
        src = manifest.parent / "src"
        if (src / "lib.rs").exists():
            yield manifest.parent.name, src


def code(path):
    """The file's text without comments (line comments and doc comments)."""
    return "\n".join(line.split("//", 1)[0] for line in path.read_text().splitlines())


REEXPORT = re.compile(r"pub use (?:self::)?(\w+)::(\{[^;]*\}|\w+);", re.S)


def reexports(src, modules):
    """The names the crate root re-exports, each with the module it comes from."""
    names = {}
    for module, items in REEXPORT.findall(code(src / "lib.rs")):
        if module in modules:
            for item in items.strip("{}").split(","):
                name = item.strip().split(" as ")[-1].strip()
                if name:
                    names[name] = module
    return names


def graph(src):
    modules = {p.stem for p in src.glob("*.rs") if p.stem not in ("lib", "main")}
    modules |= {p.name for p in src.iterdir() if p.is_dir()}
    root = reexports(src, modules)
    edges = {m: set() for m in modules}
    for module in modules:
        files = [src / f"{module}.rs"] if (src / f"{module}.rs").exists() else []
        files += sorted((src / module).rglob("*.rs")) if (src / module).is_dir() else []
        for file in files:
            text = code(file)
            names = set(USE.findall(text))
            for group in GROUP.findall(text):
                names |= {item.strip().split("::")[0] for item in group.split(",")}
            used = {root.get(name, name) for name in names}
            edges[module] |= {name for name in used if name in modules and name != module}
    return edges


def cycle(edges):
    state = {}

    def visit(node, path):
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    quiet = "--quiet" in sys.argv
    failed = False
    for name, src in crates():
        edges = graph(src)
        if not quiet:
            print(f"{name}:")
            for module in sorted(edges):
                uses = ", ".join(sorted(edges[module])) or "-"
                print(f"  {module} -> {uses}")
        found = cycle(edges)
        if found:
            failed = True
            print(f"error: {name}: modules in a cycle: {' -> '.join(found)}", file=sys.stderr)
    if failed:
        sys.exit(1)
    if not quiet:
        print("no cycle between the modules of any crate")


if __name__ == "__main__":
    main()
