"""Signing keys."""
from __future__ import annotations

from pathlib import Path

import click

from .. import spec as specmod
from ..errors import BindistroError
from ..keys import ALGORITHMS
from .base import Project, emit, json_opt, out, pass_file


@click.group()
def keys():
    """Signing keys: GnuPG in state/gnupg, named by fingerprint in bindistro.yml."""

def keyring(proj: Project, passphrase_file=None):
    from ..keys import Keyring
    return Keyring(proj.spec.state_path / "gnupg", passphrase_file)

def default_uid(sp) -> str:
    return f"{sp.product} release signing key <release@{sp.product}.invalid>"

def algorithm_opt(f):
    return click.option("--algorithm", type=click.Choice(ALGORITHMS), default=ALGORITHMS[0], show_default=True,
                        help="Key type: RSA 3072 verifies everywhere; Ed25519 signs ~3x faster and needs rpm 4.16+ "
                             "on devices (opkg and apt verify it through GnuPG).")(f)

@keys.command("generate")
@click.option("--uid", help="User id (default: '<product> release signing key').")
@algorithm_opt
@pass_file
@json_opt
@click.pass_obj
def keys_generate(proj: Project, uid, algorithm, passphrase_file, as_json):
    """Make a signing key; it signs releases when the spec names none yet."""
    sp = proj.spec
    fpr = keyring(proj, passphrase_file).generate(uid or default_uid(sp), algorithm)
    specmod.adopt_signing_key(sp, fpr)
    emit(as_json, {"fingerprint": fpr, "signing": sp.signing_key == fpr},
         lambda r: out.print(f"generated {fpr}" + (" (now keys.signing)" if r["signing"] else "")))

@keys.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_file
@json_opt
@click.pass_obj
def keys_import(proj: Project, file, passphrase_file, as_json):
    """Import a (secret or public) key file."""
    got = keyring(proj, passphrase_file).import_file(file)
    emit(as_json, {"imported": got}, lambda r: out.print("imported " + (", ".join(got) or "nothing new")))

@keys.command("export")
@click.argument("fingerprint")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def keys_export(proj: Project, fingerprint, out_file):
    """Write a public key (armored)."""
    data = keyring(proj).export(fingerprint)
    if out_file:
        out_file.write_bytes(data)
    else:
        click.echo(data.decode(), nl=False)

@keys.command("list")
@json_opt
@click.pass_obj
def keys_list(proj: Project, as_json):
    """Keys in the state directory and their role in the spec."""
    sp = proj.spec
    data = [dict(k, role="signing" if k["fingerprint"] == sp.signing_key else
                 "previous" if k["fingerprint"] in sp.previous_keys else "-") for k in keyring(proj).list()]
    emit(as_json, data, lambda d: [out.print(f"{k['fingerprint']}  {k['role']:<8}  {k['uid']}") for k in d])

@keys.command("rotate")
@click.option("--uid", help="User id of the new key.")
@algorithm_opt
@pass_file
@json_opt
@click.pass_obj
def keys_rotate(proj: Project, uid, algorithm, passphrase_file, as_json):
    """New key signs new releases; the old one stays trusted (keys.previous) so old releases verify."""
    sp = proj.spec
    if not sp.signing_key:
        raise BindistroError(f"{sp.path}: keys.signing: no key to rotate (bindistro keys generate)")
    new = keyring(proj, passphrase_file).generate(uid or default_uid(sp), algorithm)
    specmod.rotate_signing_key(sp, new)
    emit(as_json, {"signing": new, "previous": sp.previous_keys},
         lambda r: out.print(f"new signing key {new}; still trusted: {', '.join(sp.previous_keys)}"))


COMMANDS = [keys]
