"""How a CLI failure must look: exit 2, one 'Error:' line on stderr, no traceback."""

from __future__ import annotations

from click.testing import CliRunner

from toolkit.cli import main


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_failure(result, *fragments: str) -> str:
    """Exit 2, one 'Error:' line on stderr naming ``fragments``, no traceback; returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
