"""`materialabs cid` and `materialabs store` as a person (or a script) uses them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from materialabs.cli import main
from materialabs.store import cid_of_bytes
from materialabs.store.cid import CHUNK_SIZE


@pytest.fixture
def content(tmp_path: Path) -> tuple[Path, bytes]:
    data = random.Random(5).randbytes(2 * CHUNK_SIZE + 3)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    return path, data


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MATERIALABS_STORE", raising=False)
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_cid_prints_the_cid(content, capsys) -> None:
    path, data = content
    assert main(["cid", str(path)]) == 0
    assert capsys.readouterr().out == cid_of_bytes(data) + "\n"


def test_cid_of_several_files_prints_cid_and_name(content, tmp_path, capsys) -> None:
    path, data = content
    other = tmp_path / "empty"
    other.write_bytes(b"")
    assert main(["cid", str(path), str(other)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{cid_of_bytes(data)}  {path}",
        f"{cid_of_bytes(b'')}  {other}",
    ]


def test_cid_expect(content, capsys) -> None:
    path, data = content
    assert main(["cid", str(path), "--expect", cid_of_bytes(data)]) == 0
    assert main(["cid", str(path), "--expect", cid_of_bytes(b"other")]) == 1
    assert "expected" in capsys.readouterr().err


def test_cid_of_missing_file_is_a_user_error(tmp_path, capsys) -> None:
    assert main(["cid", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_store_put_get_ls_unpin_gc(content, tmp_path, isolated_home, capsys) -> None:
    path, data = content
    assert main(["store", "put", str(path)]) == 0
    cid = capsys.readouterr().out.strip()
    assert cid == cid_of_bytes(data)
    assert (isolated_home / "store" / "pins").read_text().split() == [cid]
    out = tmp_path / "out.bin"
    assert main(["store", "get", cid, "-o", str(out)]) == 0
    assert out.read_bytes() == data
    assert main(["store", "ls"]) == 0
    assert capsys.readouterr().out.split() == [cid]
    assert main(["store", "has", cid]) == 0
    assert main(["store", "unpin", cid]) == 0
    assert main(["store", "gc"]) == 0
    assert main(["store", "has", cid]) == 1


def test_store_get_of_corrupt_content_fails_and_writes_nothing(
    content, tmp_path, isolated_home, capsys
) -> None:
    path, data = content
    store_dir = tmp_path / "explicit"
    assert main(["store", "put", str(path), "--store", f"local:{store_dir}"]) == 0
    cid = capsys.readouterr().out.strip()
    leaf_cid = cid_of_bytes(data[:CHUNK_SIZE])
    leaf = store_dir / "blocks" / leaf_cid[-2:] / leaf_cid
    leaf.write_bytes(b"\0" + leaf.read_bytes()[1:])
    out = tmp_path / "out.bin"
    assert main(["store", "get", cid, "-o", str(out), "--store", str(store_dir)]) == 1
    err = capsys.readouterr().err
    assert cid in err and leaf_cid in err and "corrupt" in err
    assert not out.exists()
    assert list(tmp_path.glob(".out.bin.part-*")) == []


def test_store_user_mistakes_exit_2(capsys) -> None:
    assert main(["store", "get", "bafy-nonsense"]) == 2
    assert "malformed CID" in capsys.readouterr().err
    assert main(["store", "get", cid_of_bytes(b"absent")]) == 2
    assert "not in the local store" in capsys.readouterr().err
    assert main(["store", "ls", "--store", "ftp://x"]) == 2
    assert "unknown scheme" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys) -> None:
    for argv in (["cid", "--help"], ["store", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "examples:" in capsys.readouterr().out


def test_progress_bar_path_gives_the_same_cids(content, monkeypatch, capsys) -> None:
    """On a terminal, files are read through a tqdm-reporting reader; same results."""
    import materialabs.cli.store as cli_store

    path, data = content
    monkeypatch.setattr(cli_store, "_show_progress", lambda: True)
    assert main(["cid", str(path)]) == 0
    assert main(["store", "put", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [cid_of_bytes(data)] * 2
    assert "weights.bin" in captured.err  # the bar's label
