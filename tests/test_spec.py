"""bindistro.yml: defaults, and errors that name the file and the key."""
import json

import pytest
import yaml

from bindistro import spec as specmod


def test_init_writes_a_working_default(cli, project):
    sp = specmod.load(project / "bindistro.yml")
    assert sp.feeds() == ["all", "core2-64", "qemux86_64", "cortexa57", "cortexa57-virt", "qemuarm64"]
    assert sp.formats == ["ipk"] and (project / "state").is_dir() and (project / "publish").is_dir()
    assert cli("-C", project, "init", ok=False).exit_code == 1      # no silent overwrite


@pytest.mark.parametrize("change,key,words", [
    (lambda d: d.pop("product"), "product", "required"),
    (lambda d: d["machines"].update({"qemux86-64": {"archs": []}}), "machines.qemux86-64.archs", "non-empty"),
    (lambda d: d.update(formats=["tgz"]), "formats[0]", "'tgz'"),
    (lambda d: d["product"].update(verison="2"), "product.verison", "unknown key"),
    (lambda d: d["keys"].update(signng="x"), "keys.signng", "unknown key"),
    (lambda d: d.update(image_security={"allowed_unit": ["a.service"]}), "image_security.allowed_unit", "unknown key"),
    (lambda d: d["boot"].update(timeout="long"), "boot.timeout", "whole number"),
    (lambda d: d.update(targets="core-image-minimal"), "targets", "list"),
    (lambda d: d.update(eol="next year"), "eol", "not a date"),
    (lambda d: d.update(colour="blue"), "colour", "unknown key"),
    (lambda d: d.update(release_name="{nope}"), "release_name", "bad template"),
    (lambda d: d["machines"].update({"m": {"archs": ["all", "all"]}}), "machines.m.archs", "twice"),
])
def test_validation_names_file_and_key(cli, project, change, key, words):
    path = project / "bindistro.yml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    r = cli("-C", project, "releases", ok=False)
    assert r.exit_code == 1
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1
    assert line.startswith(f"bindistro: error: {path}: {key}:") and words in line


def test_broken_yaml(cli, project):
    (project / "bindistro.yml").write_text("product: [\n")
    r = cli("-C", project, "releases", ok=False)
    assert r.exit_code == 1 and "not valid YAML" in r.stderr and "bindistro.yml" in r.stderr


def test_no_spec_found(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("releases", ok=False)
    assert r.exit_code == 1 and "bindistro init" in r.stderr


def test_eol_refuses_stage_and_release(cli, project, sample_build):
    path = project / "bindistro.yml"
    data = yaml.safe_load(path.read_text())
    data["eol"] = "2020-01-01"
    path.write_text(yaml.safe_dump(data))
    r = cli("-C", project, "stage", sample_build(1), ok=False)
    assert r.exit_code == 1 and "end of life on 2020-01-01" in r.stderr


BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, c in zip([None, "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi"))


@pytest.mark.parametrize("case,words", [
    ("yaml-bomb", "line 1: YAML anchors and aliases are not allowed"),
    ("non-utf8", "not UTF-8 text"),
    ("directory", "is a directory"),
    ("symlink-loop", "cannot be"),
])
def test_a_spec_that_is_not_one_gets_one_line(cli, tmp_path, case, words):
    proj = tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    f = proj / "bindistro.yml"
    f.unlink()
    if case == "yaml-bomb":
        f.write_text(BOMB)
    elif case == "non-utf8":
        f.write_bytes(b"product:\n  name: caf\xe9\n")
    elif case == "directory":
        f.mkdir()
    else:
        f.symlink_to(f)
    r = cli("-C", proj, "releases", ok=False)
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_schema_is_published_and_accepts_the_default(cli, project):
    """`bindistro schema` is a draft 2020-12 JSON Schema an editor can use; `init`'s spec passes it."""
    import jsonschema
    schema = json.loads(cli("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    data = yaml.safe_load((project / "bindistro.yml").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    data["product"]["verison"] = "2"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data))


def test_spec_errors_give_the_line(cli, project):
    path = project / "bindistro.yml"
    path.write_text(path.read_text().replace("  ptest: true", "  ptest: true\n  colour: blue"))
    r = cli("-C", project, "releases", ok=False)
    line_no = next(i for i, l in enumerate(path.read_text().splitlines(), 1) if "colour" in l)
    assert "boot.colour: unknown key" in r.stderr and f"(line {line_no})" in r.stderr


@pytest.mark.parametrize("series,key,words", [
    ({"ipk": None}, "series.ipk", "package format's name"),
    ({"a": {"upgrade_from": ["b"]}, "b": {"version": "2"}}, "series.a.upgrade_from", "not a series listed before"),
    ({"a": None, "b": None}, "series.b.version", "release names would collide"),
    ({"a": {"path": "feeds"}, "b": {"version": "2", "path": "feeds"}}, "series.b.path", "feed directory too"),
    ({"a": {"path": "elsewhere/x"}}, "series.a.path", "feeds/NAME"),
    ({"a": {"supported": "yes"}}, "series.a.supported", "true or false"),
    ({"a": {"eol": "soon"}}, "series.a.eol", "not a date"),
])
def test_series_errors_name_the_key(cli, project, series, key, words):
    path = project / "bindistro.yml"
    data = yaml.safe_load(path.read_text())
    data["series"] = series
    path.write_text(yaml.safe_dump(data))
    r = cli("-C", project, "releases", ok=False)
    assert r.exit_code == 1 and r.stderr.startswith(f"bindistro: error: {path}: {key}:") and words in r.stderr


def test_series_views_and_series_add(cli, project):
    """A spec without series gains one with `series add`: its line of releases becomes the first
    series at feeds/ (every URL stays), the new one gets feeds/NAME; a view of a series carries its
    version, machines and eol; the older series devices move from leave out unsupported and ended ones."""
    assert cli("-C", project, "series", "add", "next", ok=False).stderr.count("--first NAME") == 1
    r = cli.json("-C", project, "series", "add", "scarthgap", "--version", "5.0", "--first", "kirkstone")
    assert r["feeds"] == "feeds/scarthgap"
    cli("-C", project, "series", "add", "walnascar", "--version", "5.2")
    sp = specmod.load(project / "bindistro.yml")
    assert sp.series_names() == ["kirkstone", "scarthgap", "walnascar"]
    assert (sp.in_series("kirkstone").feed_root, sp.in_series("walnascar").feed_root) == ("feeds", "feeds/walnascar")
    assert sp.in_series(None).current == "kirkstone"                 # store rows from before series
    v = sp.in_series("scarthgap")
    assert (v.version, v.format_release_name(3)) == ("5.0", "5.0.3") and v.whole is sp
    assert v.in_series("walnascar").version == "5.2"                  # a view of a view starts from the whole spec
    assert sp.in_series("walnascar").upgrade_from() == ["kirkstone", "scarthgap"]
    listed = cli.json("-C", project, "series", "list")
    assert [(x["series"], x["upgrade_from"]) for x in listed] == [
        ("kirkstone", []), ("scarthgap", ["kirkstone"]), ("walnascar", ["kirkstone", "scarthgap"])]
    data = yaml.safe_load((project / "bindistro.yml").read_text())
    data["series"]["kirkstone"]["supported"] = False
    data["series"]["scarthgap"]["eol"] = "2020-01-01"
    data["series"]["walnascar"]["machines"] = {"qemux86-64": {"archs": ["all", "x86-64-v3", "qemux86_64"]}}
    (project / "bindistro.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    sp = specmod.load(project / "bindistro.yml")
    w = sp.in_series("walnascar")
    assert w.upgrade_from() == [] and [m.name for m in w.machines] == ["qemux86-64"] and w.feeds()[1] == "x86-64-v3"
    # several series: what makes something new must say which
    r = cli("-C", project, "stage", project, ok=False)
    assert r.exit_code == 1 and "several series (kirkstone, scarthgap, walnascar): say which with --series" in r.stderr
    r = cli("-C", project, "stage", "--series", "nope", project, ok=False)
    assert r.exit_code == 1 and "no series 'nope'" in r.stderr
    r = cli("-C", project, "stage", "--series", "scarthgap", project, ok=False)
    assert r.exit_code == 1 and "series scarthgap reached end of life on 2020-01-01" in r.stderr
    # eol of one series is written into its entry, the rest of the spec as it was
    cli("-C", project, "eol", "--series", "walnascar", "--date", "2031-05-01")
    sp = specmod.load(project / "bindistro.yml")
    assert str(sp.get_series("walnascar").eol) == "2031-05-01" and sp.eol is None and sp.version == "1"


def test_a_spec_seen_valid_is_marked_and_others_still_checked(project, tmp_path, monkeypatch):
    """The schema check is skipped for data that passed it before (a mark in the cache); data that
    differs is checked, and a cache that cannot be written only means checking again."""
    monkeypatch.setenv("BINDISTRO_CACHE", str(tmp_path / "cache"))
    path = project / "bindistro.yml"
    specmod.load(path)
    marks = list((tmp_path / "cache" / "valid-specs").iterdir())
    assert len(marks) == 1
    specmod.load(path)
    data = yaml.safe_load(path.read_text())
    data["product"]["verison"] = "2"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(specmod.SpecError, match="verison"):
        specmod.load(path)
    assert len(list((tmp_path / "cache" / "valid-specs").iterdir())) == 1
    monkeypatch.setenv("BINDISTRO_CACHE", str(marks[0]))      # a file: no directory can be made under it
    del data["product"]["verison"]
    data["product"]["name"] = "other"
    path.write_text(yaml.safe_dump(data))
    assert specmod.load(path).product == "other"
