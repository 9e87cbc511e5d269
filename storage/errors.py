"""Errors raised by the storage layer.

    StorageError            base: something in persistence or sealing went wrong
    ├── SealingError        an envelope could not be sealed or opened (tampered, wrong key,
    │                       unknown key id, unsupported version or suite)
    └── KeyUnlockError      a private key file could not be unlocked (wrong passphrase,
                            damaged file)

Messages never carry request content, names or ids: they end up in logs.
"""


class StorageError(Exception):
    """Base of every storage-layer error."""


class SealingError(StorageError):
    """An envelope could not be sealed or opened."""


class KeyUnlockError(StorageError):
    """A passphrase-protected private key could not be unlocked."""
