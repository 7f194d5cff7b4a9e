"""Store addresses from the environment or the command line: refused when malformed, and an
unreachable Kubo node is one clear error, soon (issue 14)."""

from __future__ import annotations

import socket
import time

import pytest

from materialabs import config
from materialabs.store import ContentError, cid_of_bytes, open_store, parse_store_url
from materialabs.store.ipfs import KuboStore


@pytest.mark.parametrize("url", ["127.0.0.1:5001", "localhost:5001", "kubo:5001/",
                                 "[::1]:5001"])
def test_a_kubo_address_without_scheme_is_not_a_folder(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"without its scheme; write http://"):
        open_store(url)
    assert not any(tmp_path.iterdir())  # no folder named after the address


@pytest.mark.parametrize(("url", "phrase"), [
    ("http://127.0.0.1:0", "port"), ("http://127.0.0.1:70000", "port"),
    ("http://127.0.0.1:abc", "port"), ("http://:5001", "no host"),
    ("http://127.0.0.1:5001/api/v0", "the client adds /api/v0"),
    ("http://127.0.0.1:5001?x=1", "only scheme, host and port"),
])
def test_malformed_kubo_urls_are_refused(url, phrase):
    with pytest.raises(ValueError, match=phrase):
        parse_store_url(url)


def test_folders_and_kubo_urls_still_open(tmp_path):
    assert parse_store_url(str(tmp_path / "s")).kind == "local"
    assert parse_store_url("local:127.0.0.1:5001").kind == "local"  # explicit: a folder
    assert parse_store_url("https://ipfs.example.org").location == "https://ipfs.example.org"


@pytest.mark.parametrize(("name", "value"), [
    ("MATERIALABS_IPFS", "127.0.0.1:5001"), ("MATERIALABS_IPFS", "ftp://127.0.0.1:5001"),
    ("MATERIALABS_STORE", "127.0.0.1:5001"), ("MATERIALABS_STORE", "ftp://x/y"),
])
def test_store_variables_are_checked_by_name(tmp_path, monkeypatch, name, value):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MATERIALABS_STORE", raising=False)
    monkeypatch.setenv(name, value)
    with pytest.raises(config.ConfigError, match=f"^{name}={value!r}: expected "):
        config.store_url()
    with pytest.raises(config.ConfigError, match=name):
        config.check_environment()
    assert not any(tmp_path.iterdir())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_node_fails_at_once_in_one_line():
    store = KuboStore(f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ContentError) as caught:
        store.put_bytes(b"x")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message and "is the daemon running" in message
    assert "ConnectError" in message


def test_connecting_is_bounded_separately_from_reading():
    store = KuboStore("http://127.0.0.1:5001", timeout=120)
    timeout = store._client.timeout
    assert timeout.connect is not None and timeout.connect <= 5 and timeout.read == 120
    with pytest.raises(ContentError):  # nothing listens on a closed port
        KuboStore(f"http://127.0.0.1:{_closed_port()}").get(cid_of_bytes(b"y"))
