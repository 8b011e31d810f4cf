"""bitbake conf parsing: bitbake's own ConfHandler and datastore; every operator gives bitbake's value."""
import pytest

from bindistro.yocto import conf


def values(tmp_path, text, *names):
    (tmp_path / "conf").mkdir(exist_ok=True)
    f = tmp_path / "conf" / "local.conf"
    f.write_text(text)
    d = conf.parse([f], tmp_path)
    return [d.getVar(n) for n in names]


@pytest.mark.parametrize("text,expected", [
    ('A = "x"\n', "x"),
    ('A = "x"\nA ?= "y"\n', "x"),
    ('A ?= "y"\nA ?= "z"\n', "y"),
    ('A ??= "w"\n', "w"),
    ('A ??= "w"\nA ?= "v"\n', "v"),
    ('A = "x"\nA += "y"\n', "x y"),
    ('A = "x"\nA =+ "y"\n', "y x"),
    ('A = "x"\nA .= "y"\n', "xy"),
    ('A = "x"\nA =. "y"\n', "yx"),
    ('B = "b"\nA := "${B}"\nB = "c"\n', "b"),
    ('B = "b"\nA = "${B}"\nB = "c"\n', "c"),
    ('A = "x"\nA:append = " y"\n', "x y"),
    ('A = "x"\nA:prepend = "y "\n', "y x"),
    ('A = "x y z"\nA:remove = "y"\n', "x  z"),
    ('A = "one \\\n   two"\n', "one    two"),
    ('export A = "e"\n', "e"),
    ('# A = "comment"\nA = "real"\n', "real"),
])
def test_operator(tmp_path, text, expected):
    assert values(tmp_path, text, "A") == [expected]


def test_include_and_require(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "extra.inc").write_text('B = "from include"\n')
    assert values(tmp_path, 'include conf/extra.inc\ninclude conf/missing.inc\nA = "${B}"\n', "A") == ["from include"]
    with pytest.raises(conf.ConfError, match="local.conf"):
        values(tmp_path, 'require conf/missing.inc\n', "A")


def test_bad_syntax_is_one_clear_error(tmp_path):
    with pytest.raises(conf.ConfError, match="local.conf"):
        values(tmp_path, 'this is not bitbake\n', "A")
