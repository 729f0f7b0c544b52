"""live.atomic: a failed write leaves the old file whole and no temporary file behind."""

import stat

import pytest

from live.atomic import save_atomic, save_text_atomic


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "sub" / "record.json"
    save_text_atomic(path, "old")
    assert path.read_text() == "old"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644

    def half(tmp):
        with open(tmp, "w") as f:
            f.write("ne")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic(path, half)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]
