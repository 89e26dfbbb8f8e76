"""Firmware images: signed manifests (Ed25519) and the ``firmware sign|verify`` subcommand."""
