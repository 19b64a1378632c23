"""
C{bwscd cert}: the HTTPS certificate.

A new certificate is first I{staged}: the connection file lists it beside
the served one, so the controller trusts both once the operator uploads
that file.  C{activate} then serves it; the running server takes it up
within seconds (or at once on SIGHUP) without dropping uploads in flight.
"""

import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from bwscd.security import certificate

from bwscd.config import datadir, paths
from bwscd.config.connectionfile import MAX_CERTIFICATES
from bwscd.config.settings import Settings
from bwscd.commands import CommandError
from bwscd.files import writeAtomically

ERRORS = (ValueError,)


def _path(arguments, name: str) -> str:
    return os.path.join(arguments.data, name)


def _describe(label: str, pem: bytes) -> None:
    chain = x509.load_pem_x509_certificates(pem)
    leaf = chain[0]
    print(f"{label}: {leaf.subject.rfc4514_string()}")
    print(f"  names: {', '.join(certificate.subjectAltNames(pem)) or '(none)'}")
    print(f"  issuer: {leaf.issuer.rfc4514_string()}"
          + ("" if len(chain) == 1 else f" (+{len(chain) - 1} in chain)"))
    print(f"  valid: {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}")
    print(f"  sha256: {leaf.fingerprint(hashes.SHA256()).hex(':')}")


def _stage(arguments, certificatePEM: bytes, keyPEM: bytes) -> None:
    """Stage a pair, then rewrite the connection file to list it."""
    served = os.path.join(arguments.data, paths.CERTIFICATE)
    with open(served, "rb") as f:
        listed = len(x509.load_pem_x509_certificates(f.read()))
    listed += len(x509.load_pem_x509_certificates(certificatePEM))
    if listed > MAX_CERTIFICATES:
        raise CommandError(
            f"the connection file would list {listed} certificates (served and staged "
            f"chains); it holds at most {MAX_CERTIFICATES}")
    writeAtomically(_path(arguments, paths.STAGED_PRIVATE_KEY), keyPEM)
    writeAtomically(_path(arguments, paths.STAGED_CERTIFICATE), certificatePEM)
    datadir.writeConnectionFile(arguments.data, Settings.load(arguments.data))
    if arguments.activate:
        _activate(arguments)
    else:
        print("staged; upload the connection file in Body Worn Manager, then run "
              "'bwscd cert activate'")


def _activate(arguments) -> None:
    staged = _path(arguments, paths.STAGED_CERTIFICATE)
    if not os.path.exists(staged):
        raise CommandError("no staged certificate: run 'bwscd cert renew' or 'import' first")
    # The key first: a server reloading between the two renames finds a
    # certificate that doesn't match its key, keeps the old pair, and takes
    # the new one at its next look.
    os.replace(_path(arguments, paths.STAGED_PRIVATE_KEY),
               _path(arguments, paths.PRIVATE_KEY))
    os.replace(staged, _path(arguments, paths.CERTIFICATE))
    datadir.writeConnectionFile(arguments.data, Settings.load(arguments.data))
    print("activated; the running server serves it to new connections within seconds")


def _readKeyPair(certificatePath, keyPath, chainPath) -> tuple[bytes, bytes]:
    with open(certificatePath, "rb") as f:
        certificatePEM = f.read()
    with open(keyPath, "rb") as f:
        keyPEM = f.read()
    if chainPath:
        with open(chainPath, "rb") as f:
            certificatePEM = certificatePEM.rstrip(b"\n") + b"\n" + f.read()
    try:
        chain = x509.load_pem_x509_certificates(certificatePEM)
        key = serialization.load_pem_private_key(keyPEM, password=None)
    except TypeError:
        raise CommandError(f"{keyPath} is encrypted: give the key without a passphrase "
                           "(for example: openssl pkey -in KEY -out PLAIN.pem)")
    except ValueError as e:
        raise CommandError(f"can't read the certificate or key: {e}")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            chain[0].public_key().public_bytes(serialization.Encoding.DER, public):
        raise CommandError(f"{keyPath} is not the key of {certificatePath}")
    # _stage refuses a chain that would make the connection file list too many.
    return certificatePEM, keyPEM


def run(arguments) -> None:
    if arguments.action == "show":
        Settings.load(arguments.data)  # a directory that is not bwscd's fails
        for label, name in (("served", paths.CERTIFICATE),
                            ("staged", paths.STAGED_CERTIFICATE)):
            if os.path.exists(_path(arguments, name)):
                with open(_path(arguments, name), "rb") as f:
                    _describe(label, f.read())
    elif arguments.action == "renew":
        if arguments.days < 1:
            raise CommandError(f"--days {arguments.days}: a certificate is valid for at "
                               "least 1 day")
        settings = Settings.load(arguments.data)
        if not settings.https:
            raise CommandError("this data directory serves plain HTTP (--http): "
                               "there is no certificate")
        if arguments.days > certificate.LONGEST_ACCEPTED_DAYS:
            print(f"warning: --days {arguments.days} is more than "
                  f"{certificate.LONGEST_ACCEPTED_DAYS}, the longest validity Apple's "
                  "clients and browsers accept for a TLS server certificate: a client "
                  "that keeps to that limit refuses this one", file=sys.stderr)
        keyPEM = None
        if not arguments.new_key:
            with open(_path(arguments, paths.PRIVATE_KEY), "rb") as f:
                keyPEM = f.read()
        certificatePEM, keyPEM = certificate.createSelfSigned(
            settings.publicAddresses, arguments.days, keyPEM)
        _stage(arguments, certificatePEM, keyPEM)
    elif arguments.action == "import":
        _stage(arguments, *_readKeyPair(arguments.cert, arguments.key, arguments.chain))
    elif arguments.action == "activate":
        _activate(arguments)


def register(subcommands) -> None:
    parser = subcommands.add_parser(
        "cert",
        help="the HTTPS certificate",
        description="A new certificate is staged first and listed in the connection "
        "file beside the served one; upload that file in Body Worn Manager, then "
        "'activate' serves it.  The running server takes it up within seconds (at "
        "once on SIGHUP) without dropping uploads in flight.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="the served and the staged certificate")
    renew = actions.add_parser("renew", help="stage a new self-signed certificate")
    renew.add_argument("--days", type=int, default=certificate.LONGEST_ACCEPTED_DAYS,
                       help=f"validity, at least 1 (default and the longest Apple's clients "
                            f"accept: {certificate.LONGEST_ACCEPTED_DAYS})")
    renew.add_argument("--new-key", action="store_true", help="with a new key too")
    renew.add_argument("--activate", action="store_true", help="serve it at once")
    imported = actions.add_parser("import", help="stage an operator's certificate "
                                                 "(enterprise CA, ACME)")
    imported.add_argument("--cert", required=True, help="the certificate (PEM)")
    imported.add_argument("--key", required=True, help="its private key (PEM, unencrypted)")
    imported.add_argument("--chain", help="intermediate and root certificates (PEM)")
    imported.add_argument("--activate", action="store_true", help="serve it at once")
    actions.add_parser("activate", help="serve the staged certificate")
    parser.set_defaults(run=run, errors=ERRORS)
