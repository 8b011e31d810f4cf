"""bindistro.yml: defaults, and errors that name the file and the key."""
import pytest
import yaml

from bindistro import spec as specmod


def test_init_writes_a_working_default(cli, project):
    sp = specmod.load(project / "bindistro.yml")
    assert sp.feeds() == ["all", "core2-64", "qemux86_64", "cortexa57", "qemuarm64"]
    assert sp.formats == ["ipk"] and (project / "state").is_dir() and (project / "publish").is_dir()
    assert cli("-C", project, "init", ok=False).exit_code == 1      # no silent overwrite


@pytest.mark.parametrize("change,key,words", [
    (lambda d: d.pop("product"), "product", "required"),
    (lambda d: d["machines"].update({"qemux86-64": {"archs": []}}), "machines.qemux86-64.archs", "non-empty"),
    (lambda d: d.update(formats=["tgz"]), "formats", "'tgz'"),
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
