"""README's two newcomer commands stay true: CI runs the same test command."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:sh|bash)\n(.*?)```", text, re.S)
    assert block, "README.md must open with a shell block of commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_install_and_test_commands():
    install, test = _quick_start_commands()
    assert install.startswith("pip install .") and install.endswith("ffeat demo")
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    _, test = _quick_start_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
