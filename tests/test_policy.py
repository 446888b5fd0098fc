"""The policy file as compliance staff edit it: a mistake stops start-up naming the setting, never weakens screening."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from hrdd.cli import cli
from hrdd.config import DEFAULT_POLICY_FILE
from hrdd.policy import Policy, PolicyError

DEFAULT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")


def edited(old: str, new: str) -> str:
    assert old in DEFAULT
    return DEFAULT.replace(old, new, 1)


BROKEN = [
    ("misspelt setting", edited("partly_free_with_pts_at_least: 4", "partly_free_with_pts_at_lest: 4"),
     "country_risk.high.partly_free_with_pts_at_lest is not a setting (did you mean partly_free_with_pts_at_least?)"),
    ("text for a number", edited("pts_at_least: 3", "pts_at_least: three"),
     "country_risk.elevated.pts_at_least: 'three' is not a whole number from 1 to 5"),
    ("quoted number", edited("high_at_most: 10", "high_at_most: '10'"),
     "step3.civic_space.high_at_most: '10' is not a whole number from 0 to 28 (write it without quotes)"),
    ("unknown FIW status", edited("fiw_status: [NF]", "fiw_status: [NotFree]"),
     "country_risk.high.fiw_status: 'NotFree' not accepted; the values are F, PF, NF"),
    ("misspelt severity", edited("RF-2.1: high", "RF-2.1: hihg"),
     "severities.RF-2.1: 'hihg' is not one of low, medium, high, critical"),
    ("unknown red flag", edited("RF-2.1: high", "RF-2.1: high\n  RF-2.4: high"),
     "severities.RF-2.4 is not a setting"),
    ("severity set by thresholds", edited("RF-2.1: high", "RF-2.1: high\n  RF-3.1: low"),
     "severities.RF-3.1: its severity comes from the thresholds in step3.civic_space"),
    ("key given twice", edited("RF-2.1: high", "RF-2.1: high\n  RF-2.1: medium"),
     f"severities.RF-2.1 (line {DEFAULT.splitlines().index('  RF-2.1: high') + 2}) is given twice"),
    ("thresholds out of order", edited("wgi_percentile_high_below: 20", "wgi_percentile_high_below: 60"),
     "step3.rule_of_law.wgi_percentile_high_below (60) is above step3.rule_of_law.wgi_percentile_medium_below (40)"),
    ("decision below safeguards", edited("escalate_on: high", "escalate_on: low"),
     "decision.safeguards_on (medium) is above decision.escalate_on (low)"),
    ("unknown override country", edited("  pts_scores: [PTS_A, PTS_H, PTS_S]\n",
                                        "  pts_scores: [PTS_A, PTS_H, PTS_S]\n  overrides: {Georgia: {tier: high, reason: x}}\n"),
     "country_risk.overrides: 'Georgia' is not an ISO 3166-1 alpha-2 code"),
    ("override tier", edited("  pts_scores: [PTS_A, PTS_H, PTS_S]\n",
                             "  pts_scores: [PTS_A, PTS_H, PTS_S]\n  overrides: {GE: {tier: severe, reason: x}}\n"),
     "country_risk.overrides: GE: tier 'severe' is not one of low, elevated, high"),
    ("misspelt section", edited("tailoring:\n", "tailorng:\n"), "tailorng is not a section (did you mean tailoring?)"),
    ("bad YAML", edited("fiw_status: [NF]", "fiw_status: [NF"), "not valid YAML at line "),
]


@pytest.mark.parametrize("name, text, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_policy_mistake_is_refused_naming_the_setting(tmp_path, name, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(f"policy file {path}: ") + ".*" + re.escape(message)):
        Policy.load(path)


def test_a_broken_policy_stops_start_up_with_one_line(database_url, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(edited("pts_at_least: 3", "pts_at_least: three"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"HRDD_DATABASE_URL": database_url,
                                                            "HRDD_POLICY_FILE": str(path)})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert result.output.strip() == (f"Error: policy file {path}: country_risk.elevated.pts_at_least: 'three' is not "
                                     f"a whole number from 1 to 5 or null")


def test_a_country_tier_override_is_applied_and_quoted(app_config, tmp_path, client_for_policy, transaction):
    path = tmp_path / "policy.yaml"
    path.write_text(edited("  pts_scores: [PTS_A, PTS_H, PTS_S]\n", "  pts_scores: [PTS_A, PTS_H, PTS_S]\n  overrides:\n"
                           "    GE: {tier: high, reason: internal assessment HR-2026-04}\n"), encoding="utf-8")
    transaction["end_user"]["country"] = "GE"
    transaction["deployment_countries"] = ["GE"]
    body = client_for_policy(path, transaction)
    rf21 = next(f for f in body["red_flags"] if f["id"] == "RF-2.1")
    assert rf21["severity"] == "high"
    assert "Georgia: Freedom in the World 2025: Partly Free" in rf21["evidence"]
    assert "country tier high: policy override: internal assessment HR-2026-04" in rf21["evidence"]
    assert re.fullmatch(r"2026\.11-default \([0-9a-f]{12}\)", body["versions"]["policy"])


@pytest.fixture
def client_for_policy(app_config):
    """Screen one transaction with an app on the given policy file; the screening's JSON."""
    from server import create_app
    apps = []

    def screen(policy_path, transaction):
        app = create_app({**app_config, "HRDD_POLICY_FILE": str(policy_path)})
        apps.append(app)
        _, key = app.extensions["hrdd"].store.create_api_key("crm", "crm")
        response = app.test_client().post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    yield screen
    for app in apps:
        app.extensions["hrdd"].store.close()
