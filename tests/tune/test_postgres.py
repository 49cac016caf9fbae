"""The PostgreSQL storage itself, on the session's real server (tests/tune/postgres.py): every URL
form a user may type reaches it, a bad database is one line, a password is never printed. The
studies that run trials on it are the storage-parametrized tests of test_study, test_resume, test_train."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from graphopt.cli import main
from graphopt.tune.errors import StorageError
from graphopt.tune.storage import open_storage, sqlalchemy_url
from tests.tune.postgres import PORT, SUPERUSER


def test_sqlalchemy_url_names_psycopg_for_bare_postgres_urls() -> None:
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgres://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"  # an explicit driver stays
    assert sqlalchemy_url("sqlite:////x/y.db") == "sqlite:////x/y.db"


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_url_form_opens_the_server(postgres_server, scheme: str) -> None:
    db = postgres_server.new_database("forms")
    url = f"{scheme}://{SUPERUSER}@/{db}?host={postgres_server.socket_dir}&port={PORT}"
    optuna.create_study(study_name="s", storage=open_storage(url))
    assert optuna.load_study(study_name="s", storage=open_storage(url)).study_name == "s"


def test_a_missing_database_is_one_line_before_any_work(postgres_server, tmp_path: Path, model: Path,
                                                        capsys) -> None:
    url = f"postgresql://{SUPERUSER}:secret@/no_such_db?host={postgres_server.socket_dir}&port={PORT}"
    with pytest.raises(StorageError, match='database "no_such_db" does not exist'):
        open_storage(url)
    assert main(["tune", str(model), "--storage", url, "--dir", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot open storage") and "secret" not in err[0], err


def test_join_reads_the_study_from_the_server_and_no_password_is_printed(
        postgres_server, tmp_path: Path, model: Path, space_file: Path, capsys) -> None:
    """One trial by `tune`, then `--join` from another "machine" (no model argument, no study
    directory: the study in PostgreSQL says what to tune) finds the budget spent and reports it."""
    db = postgres_server.new_database("join")
    url = f"postgresql://{SUPERUSER}:secret@/{db}?host={postgres_server.socket_dir}&port={PORT}"
    argv = ["tune", str(model), "--space", str(space_file), "--dir", str(tmp_path / "s"), "--quiet",
            "--repeat", "2", "--trials", "1", "--storage", url]
    assert main(argv) == 0
    assert main(["tune", "--join", "--storage", url, "--study", "mlp"]) == 0
    assert main(["tune", "--join", "--storage", url, "--study", "other"]) == 2
    out, err = capsys.readouterr()
    assert "created study 'mlp' in postgresql://graphopt:***@/" in out
    assert "joined study 'mlp': ran 0 trials" in out and "trials: complete 1;" in out
    assert err.strip().startswith("error: no study 'other'")
    assert "secret" not in out + err
