"""One dataset interface, two transports: a local folder (one person) or an annotation server.

:class:`Dataset` is what the CLI and the MRML workspace talk to; :class:`LocalDataset` calls the
workflow library on a BIDS folder with a given rater id; :class:`RemoteDataset` calls the server
over HTTP(S) (standard library ``urllib`` only, as in Slicer) with the identity of its login token.
"""

from __future__ import annotations

from .base import Dataset, split_case_id
from .local import LocalDataset
from .remote import RemoteDataset, RemoteError, load_login, save_login, token_file

__all__ = ["Dataset", "LocalDataset", "RemoteDataset", "RemoteError", "load_login", "save_login",
           "split_case_id", "token_file"]
