"""The environment record names the commit, also for a copy of the tree without .git."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import env


def test_git_state_in_the_checkout_is_a_full_sha():
    if shutil.which("git") is None or env.git_state()["sha"] is None:
        pytest.skip("not a git checkout")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=env.REPO_ROOT
    )
    assert env.git_state()["sha"] == head.stdout.strip()


def test_a_tree_without_git_takes_the_sha_the_sender_gives(monkeypatch, tmp_path):
    monkeypatch.setattr(env, "REPO_ROOT", tmp_path)  # no .git here
    monkeypatch.delenv("CTXBENCH_GIT_SHA", raising=False)
    assert env.git_state()["sha"] is None
    monkeypatch.setenv("CTXBENCH_GIT_SHA", "0123abcd")
    assert env.git_state() == {"sha": "0123abcd", "dirty": None, "from": "CTXBENCH_GIT_SHA"}


def test_the_senders_sha_wins_over_a_git_folder_found_beside_the_tree(monkeypatch):
    """A GPU box's copy can hold a stale .git from an earlier copy: the sender's word wins."""
    monkeypatch.delenv("CTXBENCH_GIT_SHA", raising=False)
    here = env.git_state()["sha"]
    if here is None:
        pytest.skip("this checkout has no .git")
    monkeypatch.setenv("CTXBENCH_GIT_SHA", "0123abcd")
    assert env.git_state()["sha"] == "0123abcd" != here


def test_each_session_of_a_resumed_run_names_its_commit(monkeypatch):
    """A run resumed across calls can span commits: the manifest's session entry says which."""
    from harness import session

    monkeypatch.setenv("CTXBENCH_GIT_SHA", "feedbeef")
    assert session._session({"writer": "w"})["git"] == {"sha": "feedbeef", "dirty": None}
