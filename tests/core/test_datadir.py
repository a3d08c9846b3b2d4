"""Finding data: data dir, cache, download (no network: a fake opener / file://)."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest

from ssjf import datadir as data_mod
from ssjf.datadir import DataError, cache_dir, data_dir, data_file

REL = "traces/azure_llm_2023_conv.csv"
BODY = b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SSJF_DATA_DIR", raising=False)
    monkeypatch.setenv("SSJF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_data_dir_wins(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = env / "data"
    (d / "traces").mkdir(parents=True)
    (d / REL).write_bytes(BODY)
    monkeypatch.setenv("SSJF_DATA_DIR", str(d))
    assert data_dir() == d
    assert data_file(REL, opener=_no_network) == d / REL


def test_cache_used_before_download(env: Path) -> None:
    cached = cache_dir() / REL
    cached.parent.mkdir(parents=True)
    cached.write_bytes(BODY)
    assert data_file(REL, opener=_no_network) == cached


def _no_network(url: str) -> io.BytesIO:
    raise AssertionError(f"unexpected download of {url}")


def test_download_into_cache_with_fake_opener(env: Path) -> None:
    seen: list[str] = []

    def opener(url: str) -> io.BytesIO:
        seen.append(url)
        return io.BytesIO(BODY)

    path = data_file(REL, opener=opener)
    assert path == cache_dir() / REL
    assert path.read_bytes() == BODY
    assert seen == [data_mod.DOWNLOAD_URLS[REL]]
    # Second call: served from the cache, no download.
    assert data_file(REL, opener=_no_network) == path


def test_download_from_file_url(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = env / "upstream.csv"
    src.write_bytes(BODY)
    monkeypatch.setitem(data_mod.DOWNLOAD_URLS, REL, src.as_uri())
    path = data_file(REL, opener=lambda u: urllib.request.urlopen(u))
    assert path.read_bytes() == BODY


def test_failed_download_is_clear_and_leaves_no_partial_file(env: Path) -> None:
    def opener(url: str) -> io.BytesIO:
        raise OSError("Name or service not known")

    with pytest.raises(DataError) as exc:
        data_file(REL, opener=opener)
    msg = str(exc.value)
    assert REL in msg and "SSJF_DATA_DIR" in msg and "Name or service" in msg
    assert not list((cache_dir() / "traces").glob("*"))


def test_assembled_files_say_how_to_provide_them(env: Path) -> None:
    with pytest.raises(DataError, match=r"assembled .*SSJF_DATA_DIR"):
        data_file("prompts/alpaca_eval.jsonl.gz", opener=_no_network)


def test_download_disabled(env: Path) -> None:
    with pytest.raises(DataError, match="downloads are off"):
        data_file(REL, download=False)


def test_every_download_url_is_https_raw() -> None:
    for rel, url in data_mod.DOWNLOAD_URLS.items():
        assert url.startswith("https://raw.githubusercontent.com/"), rel


def test_data_dir_is_none_unless_the_named_directory_exists(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSJF_DATA_DIR", str(env / "missing"))
    assert data_dir() is None
    with pytest.raises(DataError, match="missing"):  # the message still names where it looked
        data_file(REL, download=False)
    monkeypatch.setenv("SSJF_DATA_DIR", "  ")
    assert data_dir() is None
