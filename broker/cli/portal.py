"""`broker fingerprint`, `broker metadata` and `broker keygen`: what a portal or an IdP needs to trust the broker."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from broker.cli.base import config_option, known_portal, read_config


@click.command()
@click.argument("portal")
@config_option
def fingerprint(portal: str, config_path: Path) -> None:
    """Certificate fingerprints to paste into LearnUpon (SAML settings → Manage finger prints).

    SHA-1 and SHA-256, colon-separated upper-case hex, for the current and the next certificate.

    \b
    Example:
      broker fingerprint academy --config config/broker.yaml
    """
    from broker.tools.portal_setup import portal_setup
    from broker.tools.simulate import tools_runtime

    config = read_config(config_path)
    setup = portal_setup(tools_runtime(config, offline=True).rt, known_portal(config, portal))
    signing = config.portal_signing(portal)
    click.echo(f"portal {portal}: certificate {signing.cert}")
    for label, cert in (("current", setup.current), ("next", setup.next)):
        if cert is None:
            click.echo(f"{label:<8} none (set portals.{portal}.next_certificate before a key rollover)")
            continue
        click.echo(f"{label:<8} valid until {cert.not_after}")
        click.echo(f"  SHA-1    {cert.sha1}")
        click.echo(f"  SHA-256  {cert.sha256}")


@click.command()
@click.argument("which", metavar="sp|PORTAL")
@config_option
def metadata(which: str, config_path: Path) -> None:
    """Print SAML metadata: `sp` for the broker as SP (register it at the IdP), or a portal's name for the
    broker as that portal's IdP. The same XML as /saml/metadata and /portals/<portal>/metadata.

    \b
    Example:
      broker metadata academy --config config/broker.yaml > academy-idp.xml
    """
    from broker.tools.portal_setup import portal_metadata_xml, sp_metadata_xml
    from broker.tools.simulate import tools_runtime

    config = read_config(config_path)
    rt = tools_runtime(config, offline=True).rt
    xml = sp_metadata_xml(rt) if which == "sp" else portal_metadata_xml(rt, known_portal(config, which))
    click.echo(xml.decode("utf-8"), nl=False)


@click.command()
@click.option("--portal", help="Portal the key signs for; without it, the broker's own key (broker.signing).")
@click.option(
    "--out",
    "out_dir",
    default="certs",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for NAME.key and NAME.crt.",
)
@click.option("--years", default=3, show_default=True, type=click.IntRange(1, 30), help="Validity.")
@click.option("--bits", default="2048", show_default=True, type=click.Choice(["2048", "3072", "4096"]))
@click.option("--force", is_flag=True, help="Replace existing files (LearnUpon must then trust the new one).")
def keygen(portal: str | None, out_dir: Path, years: int, bits: str, force: bool) -> None:
    """Generate an RSA signing key (mode 600) and a self-signed certificate.

    Prints the paths, both fingerprints and the YAML to add to the config.

    \b
    Example:
      broker keygen --portal academy --out certs --years 3 --bits 3072
    """
    from broker.config import PORTAL_NAME
    from broker.keys import generate_key_pair

    if portal is not None and not PORTAL_NAME.match(portal):
        raise click.ClickException(f"{portal!r} is not a portal name (lower-case letters, digits and '-')")
    stem = portal or "broker"
    key_path, cert_path = (out_dir / f"{stem}.key").absolute(), (out_dir / f"{stem}.crt").absolute()
    existing = [str(p) for p in (key_path, cert_path) if p.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise click.ClickException(f"{' and '.join(existing)} already {verb}; --force replaces them")
    try:
        pair = generate_key_pair(
            key_path, cert_path, f"{stem} SAML signing (LearnUpon broker)", years=years, key_size=int(bits)
        )
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or out_dir}: cannot write: {exc.strerror}") from None
    signing = {"signing": {"key": str(key_path), "cert": str(cert_path)}}
    snippet = {"portals": {portal: signing}} if portal else {"broker": signing}
    click.echo(f"key      {key_path} (RSA {bits}, mode 600)")
    click.echo(f"cert     {cert_path} (valid until {pair.certificate.not_valid_after_utc.date()})")
    click.echo(f"SHA-1    {pair.sha1_fingerprint}")
    click.echo(f"SHA-256  {pair.sha256_fingerprint}")
    where = f"portals.{portal}.signing" if portal else "broker.signing"
    click.echo(f"\nAdd to the config under {where} (or, for a rollover, publish the certificate first as")
    click.echo(f"{where.rsplit('.', 1)[0]}.next_certificate):\n")
    click.echo(yaml.safe_dump(snippet, sort_keys=False).rstrip())
