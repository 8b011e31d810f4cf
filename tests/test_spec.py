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
