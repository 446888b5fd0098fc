"""Every red flag of DESIGN.md fires when it should and stays quiet when it should; every decision."""

from __future__ import annotations

import copy

import pytest

from hrdd.model import Transaction

BASE = {
    "reference": {"system": "test", "object_type": "deal", "object_id": "1"},
    "stage": "quote",
    "end_user": {"name": "Nordic Retail AS", "country": "NO", "type": "private", "sector": "commercial"},
    "parties": [],
    "items": [{"sku": "ST-1", "name": "Storage array", "capabilities": ["data_storage"]}],
    "deployment_countries": [],
    "answers": {},
}


def deal(**changes) -> Transaction:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if key in ("end_user",) and isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Transaction.from_dict(data)


def items(*caps, **extra):
    return [{"sku": f"SKU-{n}", "name": f"Product {n}", "capabilities": [c], **extra} for n, c in enumerate(caps)]


@pytest.fixture
def screen(engine_services):
    def run(tx):
        return engine_services.screen(tx)
    return run


def flags(screening, flag_id=None):
    found = [f for f in screening.red_flags if flag_id is None or f.id == flag_id]
    return found


def test_low_risk_deal_proceeds_with_no_flags(screen):
    s = screen(deal())
    assert s.red_flags == []
    assert (s.decision, s.gate) == ("proceed", "release")
    assert s.risk_score == 0 and s.conditions == [] and s.tailoring == []
    assert [st.step for st in s.steps] == list(range(1, 9))


def test_design_example_escalates_with_quoted_figures(screen, transaction):
    s = screen(Transaction.from_dict(transaction))
    assert (s.decision, s.gate) == ("escalate", "hold")
    rf21 = flags(s, "RF-2.1")[0]
    assert "Egypt: Freedom in the World 2025: Not Free, 18/100" in rf21.evidence
    assert "Political Terror Scale 2023: 4" in rf21.evidence
    assert rf21.source.startswith("State Dept 2020 guidance, step 2")
    assert s.versions["data"]["fiw"] == "2025" and s.versions["ruleset"]


# ---- step 1 ----

def test_rf_1_1_past_misuse_yes_is_critical_and_blocks(screen):
    s = screen(deal(answers={"past_misuse": "yes"}))
    assert [f.severity for f in flags(s, "RF-1.1")] == ["critical"]
    assert (s.decision, s.gate) == ("do_not_proceed", "block")


@pytest.mark.parametrize("answer", ["no", "unknown", "n/a"])
def test_rf_1_1_quiet_unless_yes(screen, answer):
    assert not flags(screen(deal(answers={"past_misuse": answer})), "RF-1.1")


def test_rf_1_2_high_capability_to_high_risk_country(screen):
    s = screen(deal(end_user={"country": "EG"}, items=items("location_tracking")))
    (flag,) = flags(s, "RF-1.2")
    assert flag.severity == "high" and "Egypt" in flag.evidence and flag.data["capabilities"] == ["location_tracking"]


def test_rf_1_2_via_deployment_country(screen):
    s = screen(deal(items=items("data_analytics"), deployment_countries=["CN"]))
    assert flags(s, "RF-1.2")


def test_rf_1_2_security_sector_in_elevated_country(screen):
    s = screen(deal(end_user={"country": "HU", "type": "government", "sector": "law_enforcement"},
                    items=items("biometric_identification")))
    assert flags(s, "RF-1.2")


def test_rf_1_2_quiet_for_high_capability_to_private_buyer_in_low_country(screen):
    assert not flags(screen(deal(items=items("biometric_identification"))), "RF-1.2")


def test_rf_1_2_quiet_for_medium_capability_to_high_risk_country(screen):
    assert not flags(screen(deal(end_user={"country": "EG"}, items=items("recording_devices"))), "RF-1.2")


def test_rf_1_3_critical_component(screen):
    s = screen(deal(items=items("it_infrastructure", component_of_surveillance_system=True)))
    (flag,) = flags(s, "RF-1.3")
    assert flag.severity == "medium" and "critical component" in flag.evidence


def test_rf_1_3_low_item_to_security_sector(screen):
    s = screen(deal(end_user={"type": "government", "sector": "prisons"}, items=items("data_storage")))
    assert flags(s, "RF-1.3")


def test_rf_1_3_quiet_for_high_item_to_security_sector(screen):
    s = screen(deal(end_user={"type": "government", "sector": "military"}, items=items("location_tracking")))
    assert not flags(s, "RF-1.3")


def test_rf_1_4_any_critical_capability_even_in_low_risk_country(screen):
    s = screen(deal(items=items("intrusion_software")))
    (flag,) = flags(s, "RF-1.4")
    assert flag.severity == "high" and "4A005" in flag.evidence
    assert s.decision == "escalate"


def test_capability_flags_name_every_item_once_per_capability(screen):
    pair = [{"sku": "CAM-1", "name": "Camera", "capabilities": ["biometric_identification", "intrusion_software"]},
            {"sku": "CAM-2", "name": "Camera 2", "capabilities": ["biometric_identification"]}]
    s = screen(deal(end_user={"country": "EG", "type": "government", "sector": "law_enforcement"}, items=pair))
    by_capability = {f.data["capabilities"][0]: f for f in flags(s, "RF-1.2")}
    assert set(by_capability) == {"biometric_identification", "intrusion_software"}
    assert by_capability["biometric_identification"].data["items"] == ["CAM-1", "CAM-2"]
    assert "Camera (CAM-1) and Camera 2 (CAM-2) carry Biometric" in by_capability["biometric_identification"].evidence
    assert by_capability["intrusion_software"].data["items"] == ["CAM-1"]
    (critical,) = flags(s, "RF-1.4")
    assert critical.data == {"items": ["CAM-1"], "capabilities": ["intrusion_software"]}
    (rf23,) = flags(s, "RF-2.3")
    assert "Biometric identification (CAM-1, CAM-2)" in rf23.evidence
    # Tailoring still offers each item on its own: taking the capability off one leaves the other's flag.
    options = {(o["item"], o["remove_capability"]): o for o in s.tailoring}
    assert set(options) == {("CAM-1", "biometric_identification"), ("CAM-2", "biometric_identification"),
                            ("CAM-1", "intrusion_software")}
    assert "RF-1.2" in options[("CAM-2", "biometric_identification")]["remaining_flags"]


def test_a_large_bill_of_materials_adds_skus_not_flags(screen):
    caps = ["biometric_identification", "location_tracking", "intrusion_software", "data_storage"]
    bom = [{"sku": f"P-{n:03}", "name": f"Part {n}", "capabilities": caps} for n in range(150)]
    bom += [{"sku": f"C-{n:03}", "name": f"Component {n}", "capabilities": ["sensors"],
             "component_of_surveillance_system": True} for n in range(50)]
    s = screen(deal(end_user={"country": "EG", "type": "government", "sector": "law_enforcement"}, items=bom))
    counts = {flag_id: len(flags(s, flag_id)) for flag_id in ("RF-1.2", "RF-1.3", "RF-1.4", "RF-2.3")}
    assert counts == {"RF-1.2": 3, "RF-1.3": 1, "RF-1.4": 1, "RF-2.3": 1}
    assert all(len(f.data["items"]) == 150 for f in flags(s, "RF-1.2"))
    (components,) = flags(s, "RF-1.3")
    assert len(components.data["items"]) == 50 and "and 45 more items (see data.items) are declared" in (
        components.evidence)
    assert max(len(f.evidence) for f in s.red_flags) < 2000


def test_rf_1_2_quotes_the_figures_of_five_countries_and_counts_the_rest(screen):
    high = ["EG", "CN", "SA", "VN", "TH", "AZ", "KZ", "TJ"]
    s = screen(deal(end_user={"country": "EG"}, items=items("location_tracking"), deployment_countries=high))
    (flag,) = flags(s, "RF-1.2")
    assert flag.data["countries"] == high
    assert flag.evidence.count("Freedom in the World") == 5 and "and 3 more high-risk countries" in flag.evidence


def test_rf_1_3_unintended_capability_names_each_item_tier(screen):
    two = [{"sku": "DS-1", "name": "Disk", "capabilities": ["data_storage"]},
           {"sku": "RC-1", "name": "Recorder", "capabilities": ["recording_devices"]}]
    s = screen(deal(end_user={"type": "government", "sector": "prisons"}, items=two))
    (flag,) = flags(s, "RF-1.3")
    assert flag.data["items"] == ["DS-1", "RC-1"]
    assert flag.evidence.startswith("Disk (DS-1, tier low) and Recorder (RC-1, tier medium) go to a security-sector")


def test_rf_1_4_quiet_without_critical_capability(screen):
    assert not flags(screen(deal(items=items("forensic_extraction"))), "RF-1.4")


# ---- step 2 ----

def test_rf_2_1_government_in_high_country_is_high(screen):
    s = screen(deal(end_user={"country": "MX", "type": "government", "sector": "civil_administration"}))
    assert [f.severity for f in flags(s, "RF-2.1")] == ["high"]


def test_rf_2_1_government_linked_in_elevated_country_is_medium(screen):
    s = screen(deal(end_user={"country": "HU", "type": "government_linked", "sector": "telecom_operator"}))
    assert [f.severity for f in flags(s, "RF-2.1")] == ["medium"]


def test_rf_2_1_quiet_for_private_end_user_or_low_country(screen):
    assert not flags(screen(deal(end_user={"country": "EG"})), "RF-2.1")
    assert not flags(screen(deal(end_user={"type": "government"})), "RF-2.1")


def test_rf_2_2_exports_to_abusers(screen):
    s = screen(deal(answers={"exports_to_abusers": "yes"}))
    assert [f.severity for f in flags(s, "RF-2.2")] == ["medium"]
    assert not flags(screen(deal(answers={"exports_to_abusers": "no"})), "RF-2.2")


def test_rf_2_3_security_sector_high_capability_medium_in_low_country(screen):
    s = screen(deal(end_user={"type": "government", "sector": "border_control"}, items=items("biometric_identification")))
    assert [f.severity for f in flags(s, "RF-2.3")] == ["medium"]


def test_rf_2_3_high_when_country_high(screen):
    s = screen(deal(end_user={"country": "EG", "type": "government", "sector": "intelligence"},
                    items=items("social_media_monitoring")))
    assert [f.severity for f in flags(s, "RF-2.3")] == ["high"]


def test_rf_2_3_quiet_for_civil_end_user(screen):
    s = screen(deal(end_user={"type": "government", "sector": "civil_administration"}, items=items("biometric_identification")))
    assert not flags(s, "RF-2.3")


# ---- step 3 ----

def test_rf_3_1_and_3_2_high_for_egypt(screen):
    s = screen(deal(end_user={"country": "EG", "type": "government"}))
    assert [f.severity for f in flags(s, "RF-3.1")] == ["high"]
    assert [f.severity for f in flags(s, "RF-3.2")] == ["high"]
    assert "(D+E) 4/28" in flags(s, "RF-3.1")[0].evidence


def test_rf_3_1_and_3_2_medium_for_malaysia(screen):
    s = screen(deal(end_user={"country": "MY"}, items=items("recording_devices")))
    assert [f.severity for f in flags(s, "RF-3.1")] == ["medium"]
    assert [f.severity for f in flags(s, "RF-3.2")] == ["medium"]


def test_step3_looks_at_deployment_countries(screen):
    s = screen(deal(items=items("sensors"), deployment_countries=["EG"]))
    assert {f.data["country"] for f in flags(s, "RF-3.1")} == {"EG"}


def test_step3_does_not_apply_to_storage_for_private_retailer(screen):
    s = screen(deal(end_user={"country": "EG"}))
    assert not flags(s, "RF-3.1") and not flags(s, "RF-3.2")


def test_tailoring_shows_step3_lifted_for_a_private_buyer_without_the_surveillance_capability(screen):
    s = screen(deal(end_user={"country": "EG"}, items=[
        {"sku": "CAM-1", "name": "Camera", "capabilities": ["recording_devices"]},
        {"sku": "ST-1", "name": "Storage", "capabilities": ["data_storage"]}]))
    assert s.decision == "escalate"
    assert all(f.data["capabilities"] == ["recording_devices"] for f in flags(s, "RF-3.1") + flags(s, "RF-3.2"))
    (option,) = s.tailoring
    assert (option["item"], option["remove_capability"]) == ("CAM-1", "recording_devices")
    assert option["flags_resolved"] == ["RF-3.1", "RF-3.2"]
    assert (option["decision_without"], option["remaining_flags"]) == ("proceed", [])


def test_step3_flags_of_a_government_end_user_name_no_capability(screen):
    s = screen(deal(end_user={"country": "EG", "type": "government"}, items=items("recording_devices")))
    assert flags(s, "RF-3.1") and all("capabilities" not in f.data for f in flags(s, "RF-3.1"))


def test_step3_quiet_in_hungary(screen):
    s = screen(deal(end_user={"country": "HU", "type": "government"}))
    assert not flags(s, "RF-3.1") and not flags(s, "RF-3.2")


# ---- step 4 ----

def test_rf_4_1_intermediary_and_undisclosed_end_user(screen):
    parties = [{"role": "distributor", "name": "Gulf Channel LLC", "country": "AE"}]
    s = screen(deal(parties=parties, answers={"end_user_disclosed": "no"}))
    assert [f.severity for f in flags(s, "RF-4.1")] == ["high"]
    s = screen(deal(parties=parties, end_user={"name": "Unknown", "type": "unknown"}))
    assert flags(s, "RF-4.1")


@pytest.mark.parametrize("name", ["TBD.", "To be confirmed", "  N/A ", "End-User", "CONFIDENTIAL"])
def test_rf_4_1_placeholder_end_user_names_from_the_policy(screen, name):
    parties = [{"role": "distributor", "name": "Gulf Channel LLC", "country": "AE"}]
    s = screen(deal(parties=parties, end_user={"name": name, "type": "private"}))
    assert flags(s, "RF-4.1") and name.strip() in flags(s, "RF-4.1")[0].evidence
    assert not flags(screen(deal(parties=parties, end_user={"name": "Tbilisi Metro", "type": "private"})), "RF-4.1")


def test_rf_4_1_quiet_when_disclosed_or_direct(screen):
    parties = [{"role": "distributor", "name": "Gulf Channel LLC", "country": "AE"}]
    assert not flags(screen(deal(parties=parties, answers={"end_user_disclosed": "yes"})), "RF-4.1")
    assert not flags(screen(deal(answers={"end_user_disclosed": "no"})), "RF-4.1")


def test_rf_4_2_government_links(screen):
    s = screen(deal(parties=[{"role": "integrator", "name": "StateTech", "country": "NO", "government_linked": True}]))
    assert [f.severity for f in flags(s, "RF-4.2")] == ["medium"]
    assert flags(screen(deal(end_user={"type": "government_linked"})), "RF-4.2")
    assert not flags(screen(deal(parties=[{"role": "integrator", "name": "X", "government_linked": False}])), "RF-4.2")


def test_rf_4_4_embargo_all_items(screen):
    s = screen(deal(end_user={"country": "IR"}))
    (flag,) = flags(s, "RF-4.4")
    assert flag.severity == "critical" and "31 CFR part 560" in flag.evidence
    assert s.decision == "do_not_proceed"


def test_rf_4_4_surveillance_only_embargo(screen):
    assert flags(screen(deal(end_user={"country": "RU"}, items=items("recording_devices"))), "RF-4.4")
    assert not flags(screen(deal(end_user={"country": "RU"}, items=items("data_storage"))), "RF-4.4")


def test_tailoring_shows_a_surveillance_only_embargo_lifted_without_the_capability(screen):
    s = screen(deal(end_user={"country": "RU"}, items=items("recording_devices", "data_storage")))
    assert s.decision == "do_not_proceed"
    (option,) = s.tailoring
    assert (option["item"], option["remove_capability"]) == ("SKU-0", "recording_devices")
    assert "RF-4.4" in option["flags_resolved"] and "RF-4.4" not in option["remaining_flags"]
    assert option["decision_without"] != "do_not_proceed"


def test_tailoring_offers_nothing_against_an_all_items_embargo(screen):
    s = screen(deal(end_user={"country": "IR"}, items=items("recording_devices")))
    assert all("RF-4.4" not in o["flags_resolved"] for o in s.tailoring)
    assert all(o["decision_without"] == "do_not_proceed" for o in s.tailoring)


def test_rf_4_4_party_and_deployment_countries(screen):
    assert flags(screen(deal(parties=[{"role": "financier", "name": "Bank", "country": "KP"}])), "RF-4.4")
    assert flags(screen(deal(deployment_countries=["CU"])), "RF-4.4")


def test_rf_4_5_consignee_or_deployment_elsewhere(screen):
    s = screen(deal(parties=[{"role": "consignee", "name": "Free Zone Logistics FZE", "country": "AE"}]))
    assert [f.severity for f in flags(s, "RF-4.5")] == ["medium"]
    assert flags(screen(deal(deployment_countries=["SE"])), "RF-4.5")
    assert not flags(screen(deal(deployment_countries=["NO"],
                                 parties=[{"role": "consignee", "name": "Oslo Port", "country": "NO"}])), "RF-4.5")


# ---- steps 6, 0 ----

def test_rf_6_1_refused_safeguards(screen):
    s = screen(deal(answers={"accepts_safeguards": "no"}))
    assert [f.severity for f in flags(s, "RF-6.1")] == ["high"]
    assert s.decision == "escalate"
    assert not flags(screen(deal(answers={"accepts_safeguards": "yes"})), "RF-6.1")


def test_rf_0_1_missing_country_data_is_never_silent_low(screen):
    s = screen(deal(end_user={"country": "HK"}))
    (flag,) = flags(s, "RF-0.1")
    assert "Hong Kong" in flag.evidence and "Political Terror Scale" in flag.evidence
    assert s.decision == "proceed_with_safeguards"


def test_rf_0_1_unknown_end_user_type(screen):
    assert flags(screen(deal(end_user={"type": "unknown"})), "RF-0.1")
    assert not flags(screen(deal()), "RF-0.1")


# ---- decisions, tailoring, conditions ----

def test_surveillance_to_government_needs_safeguards_without_flags(screen):
    s = screen(deal(end_user={"type": "government", "sector": "civil_administration"}, items=items("drones")))
    assert s.red_flags == []
    assert (s.decision, s.gate) == ("proceed_with_safeguards", "release_with_conditions")
    assert "rider_executed" in s.conditions and s.risk_score > 0


def test_medium_flag_gives_safeguards_decision(screen):
    s = screen(deal(deployment_countries=["SE"]))
    assert s.decision == "proceed_with_safeguards"


def test_tailoring_reports_decision_without_the_flagged_capability(screen):
    s = screen(deal(items=[{"sku": "SPY-1", "name": "Implant", "capabilities": ["intrusion_software", "data_storage"]}]))
    assert s.decision == "escalate"
    (option,) = s.tailoring
    assert option["item"] == "SPY-1" and option["remove_capability"] == "intrusion_software"
    assert option["decision_without"] == "proceed"
    assert next(st for st in s.steps if st.step == 5).status == "options"


def test_tailoring_re_run_reuses_only_what_the_items_do_not_decide(screen, transaction):
    s = screen(Transaction.from_dict(transaction))
    (option,) = s.tailoring
    assert option["remove_capability"] == "biometric_identification"
    # The end-user and country flags are kept for the variant; the capability flags are worked out again
    # (RF-1.3: the item left with no listed capability still goes to a security-sector end-user).
    assert option["remaining_flags"] == ["RF-1.3", "RF-2.1", "RF-3.1", "RF-3.2"]
    assert option["flags_resolved"] == ["RF-1.2", "RF-2.3"]
    assert option["flags_raised"] == ["RF-1.3"]


def test_tailoring_never_calls_a_flag_both_resolved_and_remaining(screen):
    # A camera (recording) beside a face-recognition system, both to police in Uganda: RF-1.3 comes from
    # the camera's capability and, once it is removed, from the bare item still sold to the security
    # sector, so removing the capability does not resolve it.
    s = screen(deal(end_user={"name": "Uganda Police Force", "country": "UG", "type": "government",
                              "sector": "law_enforcement"},
                    items=[{"sku": "FR-200", "name": "Face recognition", "capabilities": ["biometric_identification"]},
                           {"sku": "CAM-10", "name": "Body camera", "capabilities": ["recording_devices"]}]))
    assert s.tailoring
    for option in s.tailoring:
        assert not set(option["flags_resolved"]) & set(option["remaining_flags"]), option
        assert set(option["flags_raised"]) <= set(option["remaining_flags"]), option
        assert not set(option["flags_raised"]) & {f.id for f in s.red_flags}, option
    camera = next(o for o in s.tailoring if o["item"] == "CAM-10")
    assert "RF-1.3" in {f.id for f in s.red_flags} and "RF-1.3" in camera["remaining_flags"]
    assert "RF-1.3" not in camera["flags_resolved"]


def test_each_screening_works_out_its_own_flags(screen):
    first = screen(deal(end_user={"country": "RU"}, items=items("recording_devices"),
                        answers={"exports_to_abusers": "yes"}))
    second = screen(deal(end_user={"country": "NO"}, items=items("recording_devices")))
    assert flags(first, "RF-4.4") and flags(first, "RF-3.2") and flags(first, "RF-2.2")
    assert not (flags(second, "RF-4.4") or flags(second, "RF-3.2") or flags(second, "RF-2.2"))


def test_escalation_conditions(screen, transaction):
    s = screen(Transaction.from_dict(transaction))
    assert s.conditions[:2] == ["reviewer_approval", "rider_executed"]
    assert s.risk_level == "high" and 0 < s.risk_score <= 100


def test_deployment_country_under_embargo_reads_plainly(screen):
    s = screen(deal(deployment_countries=["IR"]))
    (flag,) = flags(s, "RF-4.4")
    assert "Iran (IR), deployment country: embargoed for all items" in flag.evidence


def test_tailoring_a_large_bill_of_materials_groups_by_capability(screen):
    """One re-run per capability, not per (item, capability): 60 items x 3 flagged capabilities."""
    caps = ["biometric_identification", "location_tracking", "data_analytics"]
    big = [{"sku": f"SKU-{n}", "name": f"Product {n}", "capabilities": caps} for n in range(60)]
    police = {"country": "EG", "type": "government", "sector": "law_enforcement", "name": "Police"}
    s = screen(deal(items=big, end_user=police))
    per_pair = screen(deal(items=big[:2], end_user=police))
    assert s.decision == "escalate" and len(per_pair.tailoring) == 6
    assert all(o["item"] in ("SKU-0", "SKU-1") and "items" not in o for o in per_pair.tailoring)
    grouped = {o["remove_capability"]: o for o in s.tailoring}
    assert set(grouped) == {o["remove_capability"] for o in per_pair.tailoring}
    for option in grouped.values():
        assert option["item"] is None and option["items"] == [f"SKU-{n}" for n in range(60)]
        assert option["decision_without"] in ("proceed", "proceed_with_safeguards", "escalate", "do_not_proceed")
    assert s.steps[4].status in ("options", "no_options")


def test_tailoring_limit_comes_from_the_policy(engine_services, tmp_path):
    import yaml

    from hrdd.engine import Engine
    from hrdd.policy import Policy
    data = yaml.safe_load(engine_services.policy.path.read_text())
    data["tailoring"] = {"max_item_options": 1}
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    policy = Policy.load(path)
    engine = Engine(engine_services.pm, engine_services.reference, policy)
    two = deal(items=[{"sku": "A", "name": "A", "capabilities": ["biometric_identification"]},
                      {"sku": "B", "name": "B", "capabilities": ["biometric_identification"]}],
               end_user={"country": "EG", "type": "government", "sector": "law_enforcement"})
    (option,) = engine.screen(two).tailoring
    assert option["item"] is None and option["items"] == ["A", "B"]
    assert len(engine_services.screen(two).tailoring) == 2
