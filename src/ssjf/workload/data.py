"""The data-directory helper, as workloads see it (it lives in :mod:`ssjf.datadir`)."""

from ssjf.datadir import (
    ASSEMBLED,
    DOWNLOAD_URLS,
    DataError,
    Opener,
    cache_dir,
    data_dir,
    data_file,
    find_data_file,
)

__all__ = [
    "ASSEMBLED",
    "DOWNLOAD_URLS",
    "DataError",
    "Opener",
    "cache_dir",
    "data_dir",
    "data_file",
    "find_data_file",
]
