"""Boundaries a newcomer can rely on: every module imports on its own (no import circles), the core
never imports the SAMPLE package, gates never import each other."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bindistro", "bindistro_sample")


def modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            if "migrations" in p.parts:
                continue         # loaded by Alembic, not imported
            rel = p.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            out.append(".".join(parts))
    return out


def test_every_module_imports_on_its_own():
    # one process, a fresh import of each module in turn: a circle fails only when entered first
    code = (
        "import importlib, sys\n"
        f"mods = {modules()!r}\n"
        "bad = []\n"
        "for m in mods:\n"
        "    for k in [k for k in sys.modules if k.split('.')[0] in ('bindistro', 'bindistro_sample')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        bad.append(f'{m}: {type(e).__name__}: {e}')\n"
        "print('\\n'.join(bad))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            names |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                up = pkg.split(".")[: len(pkg.split(".")) - n.level + 1]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in n.names}
    return names


def test_core_never_imports_the_sample_package():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "bindistro").rglob("*.py")
                 if p.name != "sample.py" and any(i.startswith("bindistro_sample") for i in _imports(p))]
    assert not offenders


def test_gates_do_not_import_each_other():
    gates = ROOT / "bindistro" / "verify" / "gates"
    names = {p.stem for p in gates.glob("*.py")} - {"__init__"}
    offenders = [f"{p.name} -> {i}" for p in gates.glob("*.py") for i in _imports(p)
                 if i.startswith("bindistro.verify.gates.") and i.split(".")[3] in names and i.split(".")[3] != p.stem]
    assert not offenders


def test_only_the_entry_point_exits():
    offenders = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in (ROOT / "bindistro").rglob("*.py")
                 if p.parts[-2:] != ("cli", "base.py")
                 for n in ast.walk(ast.parse(p.read_text()))
                 if isinstance(n, ast.Call) and ast.unparse(n.func) in ("sys.exit", "exit", "SystemExit")]
    assert not offenders


def test_the_command_table_names_every_command_where_it_is_defined():
    """The entry point imports a command's module only when it runs (cli.MODULES): every module of
    the command line is in the table with exactly its commands, and `feed index` loads no store,
    spec or site code, nor another format's libraries."""
    import importlib

    from bindistro import cli
    found = {}
    for p in sorted((ROOT / "bindistro" / "cli").glob("*.py")):
        mod = importlib.import_module(f"bindistro.cli.{p.stem}")
        found |= {c.name: p.stem for c in getattr(mod, "COMMANDS", [])}
    assert found == cli.MODULES
    from bindistro.formats import FORMATS, SUFFIXES
    assert {n: f.suffix for n, f in FORMATS.items()} == SUFFIXES and all(n == f.name for n, f in FORMATS.items())
    code = ("import sys\nfrom bindistro.cli import main\nmain.get_command(None, 'feed')\n"
            "from bindistro import feed, formats\nformats.get('ipk')\n"
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'jsonschema', 'yaml', 'jinja2', "
            "'bindistro.spec', 'bindistro.store.db', 'bindistro.site', 'rich', 'createrepo_c', 'debian.deb822'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
