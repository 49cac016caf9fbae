"""A benchmark's default output never overwrites a stored result."""

from __future__ import annotations


def test_default_output_takes_the_first_free_name(tmp_path):
    from benchmarks.outputs import unused

    assert unused(tmp_path / "latency.json") == tmp_path / "latency.json"
    (tmp_path / "latency.json").write_text("{}")
    (tmp_path / "latency-2.json").write_text("{}")
    assert unused(tmp_path / "latency.json") == tmp_path / "latency-3.json"
    # a stem counts as taken when any of its files exists
    (tmp_path / "serve.md").write_text("")
    assert unused(tmp_path / "serve", (".json", ".md")) == tmp_path / "serve-2"
    assert unused(tmp_path / "other", (".json", ".md")) == tmp_path / "other"
