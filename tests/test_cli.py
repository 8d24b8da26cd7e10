"""The `kb` command surface: every command documented, `kb tag-text` as specified."""

import json
from pathlib import Path

from click.testing import CliRunner

from harvest.cli import cli

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_command_has_help_and_a_readme_section():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, command in cli.commands.items():
        assert name in result.output
        assert command.help and len(command.help) > 40, name
        assert f"kb {name}" in README, f"README has no example of kb {name}"
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0


def test_tag_text_prints_json_lines_with_evidence():
    paper = (
        "Low-dose naltrexone for fibromyalgia: a randomized, double-blind, placebo-controlled crossover trial\n"
        "Thirty-one women with fibromyalgia took naltrexone 4.5 mg/day or placebo for 12 weeks. "
        "Daily pain fell more on naltrexone than on placebo (p = 0.02), but sleep did not change. "
        "Vivid dreams were the most common adverse event.\n"
    )
    result = CliRunner().invoke(cli, ["tag-text"], input=paper)
    assert result.exit_code == 0
    tags = [json.loads(line) for line in result.output.splitlines()]
    assert all(set(t) == {"kind", "value", "detail", "evidence"} for t in tags)
    found = {(t["kind"], t["value"]) for t in tags}
    assert {("design", "rct"), ("design", "crossover"), ("design", "double_blind"), ("comparator", "placebo"),
            ("adverse_event", "vivid dreams"), ("outcome", "adverse_events")} <= found
    dose = next(t for t in tags if t["kind"] == "dose")
    assert (dose["detail"]["min_mg_per_day"], dose["detail"]["max_mg_per_day"], dose["detail"]["band"]) == (4.5, 4.5, "low")
    assert "4.5 mg/day" in dose["evidence"]
    sleep = next(t for t in tags if t["kind"] == "outcome" and t["value"] == "sleep")
    assert sleep["detail"].get("direction") == "no_difference"
    size = next(t for t in tags if t["kind"] == "sample_size")
    assert size["value"] == "31"
