from pathlib import Path

from clims_core.io.digest import sha256_file


def test_sha256_file_reads_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(path, block_size=1) == sha256_file(path)  # blocks smaller than the file, same digest
