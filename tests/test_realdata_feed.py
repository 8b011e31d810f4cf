"""The real OE 5.0 ipk feed in ../shared/realdata/feeds/vdr-oe-5.0."""
import gzip
import os

from conftest import copytree, need_realdata


def stanzas(text: str) -> list[str]:
    return [s.strip("\n") for s in text.split("\n\n") if s.strip()]


def test_stage_reports_the_two_missing_files_and_stores_nothing(cli, project):
    feed = need_realdata("feeds/vdr-oe-5.0")
    r = cli("-C", project, "stage", feed, ok=False)
    assert r.exit_code == 1
    errors = [l for l in r.stderr.splitlines() if ": error: " in l]
    assert len(errors) == 2
    assert any("cxxtools-dbg_3.0-r0_cortexa15hf-neon-vfpv4.ipk" in l and "missing" in l for l in errors)
    assert any("vdr-plugin-live-dbg_3.1.6-r0_cortexa15hf-neon-vfpv4.ipk" in l and "missing" in l for l in errors)
    # the older vdr-oe-utils r0 is not indexed, as opkg-make-index lists only the newest: a warning
    assert any("vdr-oe-utils_1.0.0-r0_all.ipk" in l and "warning" in l for l in r.stderr.splitlines())
    assert cli.json("-C", project, "releases") == []
    objects = project / "state" / "objects"
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    j = cli.json("-C", project, "stage", feed, ok=False)
    assert len([p for p in j["problems"] if p["severity"] == "error"]) == 2


def test_feed_index_reproduces_the_original_entries(cli, tmp_path):
    feed = copytree(need_realdata("feeds/vdr-oe-5.0"), tmp_path / "feed")
    original = stanzas(gzip.decompress((feed / "Packages.gz").read_bytes()).decode())
    missing = ("cxxtools-dbg_3.0-r0", "vdr-plugin-live-dbg_3.1.6-r0")
    expected = [s for s in original if not any(m in s for m in missing)]
    (feed / "Packages.gz").unlink()
    (feed / "Packages.stamps").unlink()
    cli("feed", "index", "--checksum", "md5", feed)
    got = stanzas((feed / "Packages").read_text())
    assert got == expected          # field for field, in opkg-make-index's order
    assert stanzas(gzip.decompress((feed / "Packages.gz").read_bytes()).decode()) == expected
    # a second run finds every stamp, the index's own included, as it left them: nothing is read
    before = {p.name: p.read_bytes() for p in feed.glob("Packages*")}
    j = cli.json("feed", "index", "--checksum", "md5", feed)
    assert (j["reused"], j["read"], j["written"]) == (46, 0, [])
    assert {p.name: p.read_bytes() for p in feed.glob("Packages*")} == before
    # a package taken away and put back: the index we wrote gives the others' stanzas as they are
    # (copied, not rendered again), the one put back is read; the same bytes as the first run
    pkg = next(feed.rglob("vdr_*.ipk"))
    pkg.rename(tmp_path / pkg.name)
    j = cli.json("feed", "index", "--checksum", "md5", feed)
    assert (j["reused"], j["read"]) == (44, 1)      # (the unindexed older r0 is always read)
    assert stanzas((feed / "Packages").read_text()) == [s for s in expected if f"/{pkg.name}\n" not in s + "\n"]
    (tmp_path / pkg.name).rename(pkg)
    j = cli.json("feed", "index", "--checksum", "md5", feed)
    assert (j["reused"], j["read"]) == (44, 2)
    assert {p.name: p.read_bytes() for p in feed.glob("Packages*") if p.name != "Packages.stamps"} == \
        {k: v for k, v in before.items() if k != "Packages.stamps"}
    # the index touched by someone else: made again, from the entries whose stamp did not change
    os.chmod(feed / "Packages", 0o644)
    j = cli.json("feed", "index", "--checksum", "md5", feed)
    assert j["reused"] == 45 and j["read"] == 1     # the unindexed older r0 is read again, as opkg-make-index does
    assert stanzas((feed / "Packages").read_text()) == expected
    # other options: the index is made again, not taken for the one asked for
    cli("feed", "index", feed)
    assert all("SHA256sum: " in s for s in stanzas((feed / "Packages").read_text()))
    cli("feed", "check", feed)


def test_feed_check_on_the_real_feed(cli):
    j = cli.json("feed", "check", need_realdata("feeds/vdr-oe-5.0"), ok=False)
    assert not j["ok"] and j["packages"] == 46
    assert sorted(p["path"].rsplit("/", 1)[1] for p in j["problems"] if p["severity"] == "error") == [
        "cxxtools-dbg_3.0-r0_cortexa15hf-neon-vfpv4.ipk", "vdr-plugin-live-dbg_3.1.6-r0_cortexa15hf-neon-vfpv4.ipk"]


def test_a_report_line_shows_a_name_as_it_is(cli, tmp_path):
    """A human report line is text, not markup: a directory named with brackets or an emoji code
    is printed as it is (rich read `[bold]` as a style and dropped it from the path)."""
    feed = copytree(need_realdata("feeds/vdr-oe-5.0/all"), tmp_path / "feed[bold]:smile:")
    r = cli("feed", "index", "--checksum", "md5", feed)
    assert f"indexed {feed}:" in r.stdout
