"""The test cluster's hold on /etc/slurm/slurm.conf: leftovers of killed sessions are replaced, live holders waited for.

Exercised on a link in a temporary folder, so it runs anywhere (no root, no Slurm).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.e2e.slurm_cluster import LOCK_NAME, system_config_link


def test_a_stale_link_of_a_killed_session_is_replaced_and_removed_after(tmp_path: Path) -> None:
    link = tmp_path / "etc" / "slurm.conf"
    link.parent.mkdir()
    killed_session_conf = tmp_path / "old" / "slurm.conf"  # still on disk, as a killed pytest leaves its tmp folder
    killed_session_conf.parent.mkdir()
    killed_session_conf.write_text("old\n")
    link.symlink_to(killed_session_conf)
    ours = tmp_path / "new" / "slurm.conf"
    ours.parent.mkdir()
    ours.write_text("new\n")
    with system_config_link(ours, link=link):
        assert link.resolve() == ours.resolve()
    assert not link.exists() and not link.is_symlink()


def test_a_real_config_file_is_never_replaced(tmp_path: Path) -> None:
    link = tmp_path / "slurm.conf"
    link.write_text("a site's own Slurm\n")
    with pytest.raises(RuntimeError, match="system Slurm"):
        with system_config_link(tmp_path / "ours.conf", link=link):
            pass
    assert link.read_text() == "a site's own Slurm\n"


def test_a_live_holder_is_waited_for_then_the_link_is_ours(tmp_path: Path) -> None:
    link = tmp_path / "slurm.conf"
    other, ours = tmp_path / "other.conf", tmp_path / "ours.conf"
    other.write_text("other\n")
    ours.write_text("ours\n")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.e2e.slurm_cluster import system_config_link
        with system_config_link(Path({str(other)!r}), link=Path({str(link)!r})):
            print("held", flush=True)
            time.sleep(2)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RuntimeError, match="held"):
            with system_config_link(ours, link=link, timeout=0.1):
                pass
        assert link.resolve() == other.resolve()  # the live holder's link was left alone
        with system_config_link(ours, link=link, timeout=60):  # waits out the holder's two seconds
            assert link.resolve() == ours.resolve()
            assert holder.wait(timeout=30) == 0  # the holder finished cleanly and left our link alone
            assert link.resolve() == ours.resolve()
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / LOCK_NAME).exists()
