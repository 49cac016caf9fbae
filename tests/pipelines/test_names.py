"""Names that become paths (components, branches, areas, files) never escape the repository.

Every refusal is one line `error: ...` with exit 2, writes nothing outside the
repository, stages nothing, and leaves what is stored intact (fsck clean, head unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.pipelines import open_repo
from graphopt.pipelines.components import make_spec
from graphopt.pipelines.errors import BadNameError, ComponentRunError, CorruptObjectError
from graphopt.pipelines.maintenance import fsck
from graphopt.pipelines.objects import ObjectStore
from tests.pipelines.conftest import TOY, build_base, gp, one_line_error
from tests.pipelines.toy import write_data

DIRNAME = ".graphopt-pipeline"




def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []




@pytest.fixture
def repo_dir(tmp_path, template):
    """A committed toy repository in tmp/r (a copy of one built once), and an empty victim folder beside it."""
    shutil.copytree(template, tmp_path / "r")
    (tmp_path / "victim").mkdir()
    return tmp_path / "r"


def snapshot(root: Path) -> tuple[str, set[Path]]:
    """The head of main and every file around the repository (its objects included; not tmp/ or the db)."""
    files = {p for p in files_under(root.parent)
             if not p.is_relative_to(root / DIRNAME / "tmp") and not p.name.startswith("meta.sqlite")}
    repo = open_repo(root, area="")
    try:
        return repo.head("main"), files
    finally:
        repo.close()


def assert_untouched(root: Path, before: tuple[str, set[Path]]) -> None:
    """Nothing written anywhere (repository objects included), nothing staged, fsck clean."""
    head, files = snapshot(root)
    assert head == before[0]
    assert files == before[1], files ^ before[1]
    repo = open_repo(root, area="")
    try:
        assert not repo.conn.execute("SELECT 1 FROM staged").fetchone()
        report = fsck(repo)
        assert report.clean, report.problems
    finally:
        repo.close()


BAD_COMPONENT_NAMES = ["{victim}/evil", "{victim}", "../../../x", "../x", "..", ".", "a/b", "a\\b", "", "a\0b",
                       "x" * 101, ".hidden", "a b", "a\nb", "caf\u00e9", "~me"]


@pytest.mark.parametrize("name", BAD_COMPONENT_NAMES)
def test_add_component_refuses_a_name_that_is_not_a_folder_name(repo_dir, capsys, name):
    name = name.format(victim=repo_dir.parent / "victim")
    data = write_data(repo_dir.parent / "d.npz", seed=3)
    before = snapshot(repo_dir)
    assert gp(repo_dir, "add-component", name, "--kind", "dataset", "--file", str(data)) == 2
    assert "name" in one_line_error(capsys)
    # the downstream step that used to copy the input to tmp/run-*/in/<name> at commit
    assert gp(repo_dir, "add-component", "use", "--kind", "python", "--ref", f"{TOY}:prep", "--input", name) == 2
    one_line_error(capsys)
    assert gp(repo_dir, "commit", "-m", "x", "--quiet") == 2
    assert "nothing to commit" in one_line_error(capsys)
    assert_untouched(repo_dir, before)


def test_a_bad_name_already_staged_is_refused_at_commit_and_writes_nothing_outside(repo_dir, capsys):
    """A repository staged before names were checked: commit refuses before running anything."""
    victim = repo_dir.parent / "victim"
    repo = open_repo(repo_dir, area="")
    head = repo.head("main")
    spec = make_spec("dataset", repo.store, files=[write_data(repo_dir.parent / "d.npz", seed=4)])
    use = make_spec("python", repo.store, ref=f"{TOY}:prep", inputs=[str(victim)])
    with repo.conn:  # as the old code wrote them: no check
        for name, s in ((str(victim), spec), ("use", use), ("../../../up", spec)):
            repo.conn.execute("INSERT INTO staged(branch, area, component, position, spec, token) "
                              "VALUES ('main', '', ?, NULL, ?, ?)", (name, json.dumps(s), name))
    repo.close()
    assert gp(repo_dir, "commit", "-m", "escape", "--quiet") == 2
    assert "bad component name" in one_line_error(capsys)
    assert files_under(victim) == [] and not (repo_dir / DIRNAME / "up").exists()
    repo = open_repo(repo_dir, area="")
    assert repo.head("main") == head and fsck(repo).clean
    repo.close()


@pytest.mark.parametrize("first, second", [("data2", "DATA2"), ("a-b", "a_b"), ("a.b", "A-B")])
def test_components_that_would_share_a_folder_or_variable_are_refused(repo_dir, capsys, first, second):
    data = write_data(repo_dir.parent / "d.npz", seed=5)
    assert gp(repo_dir, "add-component", first, "--kind", "dataset", "--file", str(data)) == 0
    assert gp(repo_dir, "commit", "-m", first, "--quiet") == 0
    before = snapshot(repo_dir)
    capsys.readouterr()
    assert gp(repo_dir, "add-component", second, "--kind", "dataset", "--file", str(data)) == 2
    assert "differ only in case" in one_line_error(capsys)
    assert_untouched(repo_dir, before)


def test_library_api_checks_names_where_they_enter(repo_dir):
    victim = repo_dir.parent / "victim"
    repo = open_repo(repo_dir)
    data = make_spec("dataset", repo.store, files=[write_data(repo_dir.parent / "d.npz", seed=6)])
    before = snapshot(repo_dir)
    oid = next(iter(data["files"].values()))
    with pytest.raises(BadNameError):
        repo.stage(str(victim), data)
    with pytest.raises(BadNameError):
        repo.stage("d2", {"kind": "dataset", "files": {"../../../escaped.npz": oid}})
    with pytest.raises(BadNameError):
        repo.stage("d2", {"kind": "dataset", "files": {str(victim / "x.npz"): oid}})
    with pytest.raises(BadNameError):
        repo.commit("m", changes={str(victim): data})
    with pytest.raises(BadNameError):
        repo.commit("m", changes={"../up": data})
    repo.close()
    assert_untouched(repo_dir, before)


@pytest.mark.parametrize("name", ["../x", "..", "a/b", ".x", "x" * 101, "a\0b", "a:b", "a@b", "a b", "~p"])
def test_branch_names_are_checked(repo_dir, capsys, name):
    before = snapshot(repo_dir)
    assert gp(repo_dir, "branch", name) == 2
    assert "branch name" in one_line_error(capsys)
    repo = open_repo(repo_dir)
    assert list(repo.branches()) == ["main"]
    repo.close()
    assert_untouched(repo_dir, before)


def test_empty_branch_name_is_refused_not_a_listing(repo_dir, capsys):
    assert gp(repo_dir, "branch", "") == 2
    assert "must not be empty" in one_line_error(capsys)


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x" * 101])
def test_init_refuses_a_bad_first_branch_and_creates_nothing(tmp_path, capsys, name):
    assert main(["pipeline", "init", str(tmp_path / "r"), "--branch", name]) == 2
    one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("area", ["../x", "a/b", "~priv", "x" * 101])
def test_staging_area_names_are_checked(repo_dir, capsys, area):
    data = write_data(repo_dir.parent / "d.npz", seed=7)
    before = snapshot(repo_dir)
    assert gp(repo_dir, "add-component", "d2", "--kind", "dataset", "--file", str(data), "--area", area) == 2
    assert "staging area name" in one_line_error(capsys)
    assert_untouched(repo_dir, before)


def test_dataset_file_names_are_checked_and_never_collide(repo_dir, capsys):
    base = repo_dir.parent
    a, b = write_data(base / "a" / "data.npz", seed=1), write_data(base / "b" / "data.npz", seed=2)
    c, odd = write_data(base / "c" / "DATA.npz", seed=3), write_data(base / "odd\nname.npz", seed=4)
    before = snapshot(repo_dir)
    assert gp(repo_dir, "add-component", "two", "--kind", "dataset", "--file", str(a), "--file", str(b)) == 2
    assert "two files named 'data.npz'" in one_line_error(capsys)  # one used to replace the other silently
    assert gp(repo_dir, "add-component", "two", "--kind", "dataset", "--file", str(a), "--file", str(c)) == 2
    assert "differ only in case" in one_line_error(capsys)
    assert gp(repo_dir, "add-component", "odd", "--kind", "dataset", "--file", str(odd)) == 2
    assert "control characters" in one_line_error(capsys)
    assert_untouched(repo_dir, before)


def test_a_tree_naming_a_path_outside_is_never_materialized(tmp_path):
    """A crafted (or tampered) tree object: materialize refuses it whole, fsck names it."""
    root = tmp_path / "r"
    build_base(root).close()
    store = ObjectStore(root / DIRNAME)
    blob = store.put_bytes(b"payload")
    for name in ("../escaped", f"{tmp_path}/abs", "ok/../../escaped", "a//b"):
        tree = store.put_tree_files({"fine.txt": blob, name: blob})
        with pytest.raises(CorruptObjectError, match="unsafe path"):
            store.materialize(tree, tmp_path / "dest" / "in")
    assert not (tmp_path / "dest").exists() and not (tmp_path / "escaped").exists() and not (tmp_path / "abs").exists()
    repo = open_repo(root)
    problems = fsck(repo).problems
    repo.close()
    assert len(problems) == 4 and all("unsafe path" in p for p in problems)


def linker(inputs: dict[str, Path], out: Path, params: dict) -> None:
    """A component whose output is a symbolic link to a file outside it."""
    os.symlink(params["target"], out / "leak.txt")


def test_a_symlink_in_a_component_output_is_refused_not_followed(repo_dir, capsys):
    secret = repo_dir.parent / "secret.txt"
    secret.write_text("do not store me")
    assert gp(repo_dir, "add-component", "leak", "--kind", "python", "--ref", "tests.pipelines.test_names:linker",
              "--input", "data", "--param", f"target={secret}") == 0
    capsys.readouterr()
    assert gp(repo_dir, "commit", "-m", "leak", "--quiet") == 2
    assert "symbolic link" in one_line_error(capsys)
    repo = open_repo(repo_dir, area="")
    assert len(repo.ancestors(repo.head("main"))) == 1 and fsck(repo).clean
    assert all(repo.store.read_bytes(o) != secret.read_bytes() for o in repo.store.ids())
    repo.close()


def test_component_output_symlink_raises_component_run_error(tmp_path):
    store = ObjectStore(tmp_path / "s")
    (tmp_path / "out").mkdir()
    os.symlink("/etc", tmp_path / "out" / "etc")
    with pytest.raises(ComponentRunError, match="symbolic link"):
        store.put_dir(tmp_path / "out")


def test_a_schema_1_repository_is_upgraded_with_its_staged_changes_kept(repo_dir, capsys):
    """Staged rows of a repository written before staging areas land in the shared area."""
    db = repo_dir / DIRNAME / "meta.sqlite"
    repo = open_repo(repo_dir, area="")
    spec = make_spec("python", repo.store, ref=f"{TOY}:score", inputs=["fit"], params={"bonus": 3})
    repo.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP TABLE staged")
        conn.execute("CREATE TABLE staged(branch TEXT NOT NULL, component TEXT NOT NULL, position INTEGER, "
                     "spec TEXT NOT NULL, PRIMARY KEY(branch, component))")
        conn.execute("INSERT INTO staged VALUES ('main', 'score', NULL, ?)", (json.dumps(spec),))
        conn.execute("UPDATE state SET value='1' WHERE key='schema_version'")
    conn.close()
    assert gp(repo_dir, "status") == 0 and "score: python" in capsys.readouterr().out
    assert gp(repo_dir, "commit", "-m", "bonus 3", "--quiet") == 0
    repo = open_repo(repo_dir, area="")
    assert repo.staged("main") == [] and fsck(repo).clean
    assert repo.conn.execute("SELECT value FROM state WHERE key='schema_version'").fetchone()[0] == "2"
    repo.close()


def test_a_harmless_name_from_before_the_rules_still_commits(repo_dir, capsys):
    """The executor's own check only refuses what would leave its folder: 'my data' (a space) still runs."""
    repo = open_repo(repo_dir, area="")
    spec = make_spec("dataset", repo.store, files=[write_data(repo_dir.parent / "d.npz", seed=8)])
    with repo.conn:
        repo.conn.execute("INSERT INTO staged(branch, area, component, position, spec, token) "
                          "VALUES ('main', '', 'my data', NULL, ?, 't')", (json.dumps(spec),))
    repo.close()
    assert gp(repo_dir, "commit", "-m", "legacy", "--quiet") == 0
    capsys.readouterr()
    data = str(repo_dir.parent / "d.npz")
    assert gp(repo_dir, "add-component", "My-Data", "--kind", "dataset", "--file", data) == 2
    assert "differ only in case" in one_line_error(capsys)  # a twin of the old name, on disk and in the env
