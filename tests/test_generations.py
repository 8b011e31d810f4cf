"""Generations of the publish tree made from the one they retire (publish.Tree.begin): the new
generation must be exactly the current one plus what the command writes, whatever the retired one
held, and every unchanged file a link to the current one's."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from bindistro.publish import KEEP_OLD, Tree
from bindistro.store.objects import FILE_MODE


def listing(d: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(d))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.read_bytes(), oct(p.stat().st_mode & 0o777))
    return out


def begin(tree: Tree):
    """As publish.transaction: the next generation, then the older ones pruned."""
    g = tree.begin()
    pruning = tree.prune()
    if pruning:
        pruning.wait()
    return g


def test_a_generation_made_from_a_retired_one_is_the_current_one_plus_the_changes(tmp_path):
    tree = Tree(tmp_path / "pub")
    reused = None
    g = begin(tree)
    for rel, data in (("feeds/a/x.ipk", b"x"), ("feeds/a/Packages", b"1"), ("site/p.html", b"p1"),
                      ("site/old/gone.html", b"g"), ("releases.json", b"[1]")):
        g.write(rel, data)
    os.symlink("x.ipk", g.dir / "feeds/a/alias")
    g.commit(lambda n: None)
    for k in range(2, 9):
        before = listing(tree.generation_dir(tree.current()))
        retired = [n for n in tree.generations() if n < tree.current() - KEEP_OLD]
        if retired:         # what a damaged or edited old generation may hold: none of it may survive
            old = tree.generation_dir(max(retired))
            reused = os.stat(old).st_ino
            (old / "feeds/a/Packages").unlink()
            (old / "feeds/a/Packages").write_bytes(b"tampered")
            (old / "feeds/a/x.ipk").unlink()
            (old / "feeds/a/x.ipk").write_bytes(b"other bytes")
            (old / "junk").mkdir()
            (old / "junk/f").write_bytes(b"j")
            (old / "feeds/a/stray.ipk").write_bytes(b"s")
            os.unlink(old / "feeds/a/alias")
            os.symlink("elsewhere", old / "feeds/a/alias")
            (old / "site/p.html").unlink()
            (old / "site/p.html").mkdir()
        g = begin(tree)
        g.write(f"feeds/a/new{k}.ipk", str(k).encode())
        g.write("feeds/a/Packages", str(k).encode())
        if k == 4:
            shutil.rmtree(g.dir / "site/old")
        g.commit(lambda n: None)
        now = tree.generation_dir(tree.current())
        want = dict(before, **{f"feeds/a/new{k}.ipk": ("file", str(k).encode(), oct(FILE_MODE)),
                               "feeds/a/Packages": ("file", str(k).encode(), oct(FILE_MODE))})
        if k >= 4:
            want = {r: v for r, v in want.items() if not r.startswith("site/old")}
        assert listing(now) == want, k
        prev = tree.generation_dir(tree.current() - 1)
        for rel, v in want.items():     # unchanged files: the very inode of the generation before
            if v[0] == "file" and rel != "feeds/a/Packages" and rel != f"feeds/a/new{k}.ipk":
                assert os.stat(now / rel).st_ino == os.stat(prev / rel).st_ino, rel
        if retired:
            assert os.stat(now).st_ino == reused, "the retired generation's directory was not reused"
        assert len(tree.generations()) <= KEEP_OLD + 2
    assert reused
