"""OAuth client credentials as the set-up guides configure them: the guides' own YAML, a real token fetch,
enrichment and write-back against a local stand-in for the vendor, and errors that name the setting."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.adapter_support import FakeServer, fixture_bytes, outbox_rows

GUIDES = Path(__file__).resolve().parent.parent / "docs" / "integrations"
SF_ORG = "00D5e000000KQ2e"
SF_TOKEN = "sf-outbound-path-token"
CLIENT_ID = "3MVG9-connected-app-id"
CLIENT_SECRET = "cs-SECRET-9f2a77c1"
ACCESS_TOKEN = "00Dfake!AQ-issued-access-token"
OPPORTUNITIES = ("0065e00000BvRk1AAF", "0065e00000BvRk2AAF", "0065e00000BvRk3AAF")


def guide_yaml(guide: str, section: str) -> str:
    """The first ```yaml block of a section ("## 4.") of docs/integrations/<guide>.md, as written there."""
    text = (GUIDES / f"{guide}.md").read_text(encoding="utf-8")
    part = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    return part.split("```yaml\n", 1)[1].split("```", 1)[0]


def token_endpoint(issued: list[dict]):
    """A client-credentials token endpoint that records each form and issues ACCESS_TOKEN."""
    def answer(request):
        form = {k: v[0] for k, v in parse_qs(request["body"].decode()).items()}
        issued.append(form)
        if form.get("client_secret") != CLIENT_SECRET or form.get("client_id") != CLIENT_ID:
            return 401, {"error": "invalid_client", "error_description": "invalid client credentials"}
        return 200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3599}
    return answer


def run_worker(app) -> dict:
    from hrdd_plugins.adapter_runtime import worker_command

    result = app.test_cli_runner().invoke(worker_command, ["--once"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def salesforce_app(app_config, tmp_path, fake_url: str, *, client_secret: str = CLIENT_SECRET):
    """The app configured as salesforce.md §3 (environment), §4 and §5 (the YAML file) say."""
    from server import create_app

    text = guide_yaml("salesforce", "4.") + guide_yaml("salesforce", "5.")
    path = tmp_path / "adapters.yaml"
    path.write_text(text.replace("https://acme.my.salesforce.com", fake_url), encoding="utf-8")
    app_config.update(HRDD_ADAPTERS_FILE=str(path), SF_CLIENT_ID=CLIENT_ID, SF_CLIENT_SECRET=client_secret,
                      HRDD_ADAPTER_SALESFORCE_ORGANIZATION_IDS=SF_ORG, HRDD_ADAPTER_SALESFORCE_TOKEN=SF_TOKEN)
    return create_app(app_config)


def test_oauth_settings_are_used_as_they_are_and_only_secrets_are_masked(app_config, tmp_path):
    from hrdd.adapters.config import Secret, load_settings

    path = tmp_path / "adapters.yaml"
    path.write_text(guide_yaml("salesforce", "4.") + guide_yaml("salesforce", "5."), encoding="utf-8")
    settings = load_settings({"HRDD_ADAPTERS_FILE": str(path), "SF_CLIENT_ID": CLIENT_ID,
                              "SF_CLIENT_SECRET": CLIENT_SECRET})
    for oauth in (settings["adapters"]["salesforce"]["oauth"], settings["writeback"]["salesforce"]["oauth"]):
        assert oauth["token_url"] == "https://acme.my.salesforce.com/services/oauth2/token"
        assert not isinstance(oauth["token_url"], Secret) and not isinstance(oauth["client_id"], Secret)
        assert isinstance(oauth["client_secret"], Secret) and CLIENT_SECRET not in f"{oauth} {oauth!r}"
    wb = settings["writeback"]["salesforce"]
    assert str(wb["url"]).endswith("/sobjects/{object_type}/{object_id}")
    # Vendor field names and queries are data, whatever words they contain.
    assert "FROM OpportunityLineItem" in str(settings["adapters"]["salesforce"]["line_item_queries"]["Opportunity"])


@pytest.mark.parametrize("name, secret", [
    ("client_secret", True), ("access_token", True), ("token", True), ("api_key", True), ("auth_key", True),
    ("bearer_tokens", True), ("odata_password", True), ("signing_secret", True), ("Authorization", True),
    ("X-Api-Key", True), ("token_url", False), ("tokenUrl", False), ("client_id", False), ("key_id", False),
    ("auth_header", False), ("instance_url", False), ("base_url", False), ("scope", False), ("odata_user", False),
])
def test_which_setting_names_hold_secrets(name, secret):
    from hrdd.adapters.config import is_secret_name

    assert is_secret_name(name) is secret


def test_salesforce_guide_line_items_and_write_back_fetch_a_token_and_use_it(app_config, tmp_path, caplog):
    issued: list[dict] = []
    line = {"ProductCode": "FR-200", "Name": "FaceFind Enterprise", "Quantity": 2, "UnitPrice": 150000,
            "Product2": {"HRDD_Capabilities__c": "biometric_identification"}}
    routes = {("POST", "/services/oauth2/token"): token_endpoint(issued),
              ("GET", "/services/data/v61.0/query"): (200, {"totalSize": 1, "done": True, "records": [line]})}
    for object_id in OPPORTUNITIES:
        routes[("PATCH", f"/services/data/v61.0/sobjects/Opportunity/{object_id}")] = (204, b"")
    caplog.set_level(logging.DEBUG)
    with FakeServer(routes) as fake:
        app = salesforce_app(app_config, tmp_path, fake.url)
        r = app.test_client().post(f"/v1/hooks/salesforce?token={SF_TOKEN}",
                                   data=fixture_bytes("salesforce/opportunity_batch.xml"),
                                   headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
        assert r.status_code == 200 and b"<Ack>true</Ack>" in r.data
        # §4: the line items were queried with the token, and screened (nothing is pending enrichment).
        queries = [q for q in fake.requests if q["path"].endswith("/query")]
        assert queries and all(q["headers"]["authorization"] == f"Bearer {ACCESS_TOKEN}" for q in queries)
        counts = run_worker(app)
        assert counts["writeback"] == {"delivered": 3, "retrying": 0, "failed": 0}
        assert counts["events"] == {"screened": 0, "pending": 0, "invalid": 0, "stale": 0, "failed": 0}
    assert issued and issued[0] == {"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                    "client_secret": CLIENT_SECRET}
    patches = {q["path"].rsplit("/", 1)[-1]: q for q in fake.requests if q["method"] == "PATCH"}
    assert set(patches) == set(OPPORTUNITIES)
    assert all(q["headers"]["authorization"] == f"Bearer {ACCESS_TOKEN}" for q in patches.values())
    egypt = json.loads(patches[OPPORTUNITIES[0]]["body"])
    assert egypt["HRDD_Gate__c"] == "hold" and egypt["HRDD_Screening_Id__c"].startswith("scr_")
    stored = app.extensions["hrdd"].store.get_screening(egypt["HRDD_Screening_Id__c"])
    assert [i["sku"] for i in stored["transaction"]["items"]] == ["FR-200"]  # from the queried line
    assert outbox_rows(app, "pending") == [] and outbox_rows(app, "failed") == []
    kept = json.dumps(outbox_rows(app, "delivered"))
    assert CLIENT_SECRET not in kept and ACCESS_TOKEN not in kept
    assert CLIENT_SECRET not in caplog.text and ACCESS_TOKEN not in caplog.text


def test_a_refused_client_secret_names_the_setting_and_never_the_secret(app_config, tmp_path, caplog):
    issued: list[dict] = []
    routes = {("POST", "/services/oauth2/token"): token_endpoint(issued)}
    caplog.set_level(logging.DEBUG)
    with FakeServer(routes) as fake:
        wrong = "cs-WRONG-0b1c2d3e"
        app = salesforce_app(app_config, tmp_path, fake.url, client_secret=wrong)
        client = app.test_client()
        key = app.extensions["hrdd"].store.create_api_key("crm", "crm")[1]
        body = json.loads(fixture_bytes("generic/transaction.json"))
        body["reference"] = {"system": "salesforce", "object_type": "Opportunity", "object_id": OPPORTUNITIES[1]}
        assert client.post("/v1/screenings", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 201
        assert run_worker(app)["writeback"] == {"delivered": 0, "retrying": 0, "failed": 1}
    error = outbox_rows(app, "failed")[0]["last_error"]
    assert "OAuth token request (writeback.salesforce.oauth) failed" in error and "answered 401" in error
    assert wrong not in error and wrong not in caplog.text and not any(q["method"] == "PATCH" for q in fake.requests)


@pytest.mark.parametrize("oauth, message", [
    ({"token_url": "acme.my.salesforce.com/services/oauth2/token"},
     "writeback.salesforce.oauth.token_url is not an http(s) URL: 'acme.my.salesforce.com/services/oauth2/token'"),
    ({"token_url": "https://acme.my.salesforce.com/services/oauth2/token?secret=x"}, None),
])
def test_a_url_setting_that_cannot_be_called_stops_start_up_naming_it(app_config, oauth, message):
    from hrdd.adapters.config import ConfigError
    from server import create_app

    app_config["HRDD_ADAPTERS"] = {"writeback": {"salesforce": {
        "url": "https://acme.my.salesforce.com/services/data/v61.0/sobjects/{object_type}/{object_id}",
        "oauth": {**oauth, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}}}
    if message is None:
        create_app(app_config)
        return
    with pytest.raises(ConfigError) as raised:
        create_app(app_config)
    assert str(raised.value) == message and CLIENT_SECRET not in str(raised.value)


def test_a_missing_oauth_setting_is_named_when_the_write_back_runs(app):
    from hrdd.adapters import outbox
    from hrdd.adapters.config import settings_for

    settings = settings_for(app)
    settings["writeback"]["crm"] = {"url": "https://crm.example/records/{object_id}",
                                    "oauth": {"token_url": "https://crm.example/token", "client_id": CLIENT_ID}}
    with app.app_context():
        with app.extensions["hrdd"].store.begin() as conn:
            outbox.enqueue(conn, settings, system="crm", object_type="deal", object_id="7", gate="hold", reason="x")
        assert outbox.deliver_due(app.extensions["hrdd"], settings) == {"delivered": 0, "retrying": 0, "failed": 1}
    assert outbox_rows(app, "failed")[0]["last_error"] == "writeback.crm.oauth: client_secret not set"


def test_dynamics_guide_reads_a_trimmed_row_and_writes_back_with_an_entra_token(app_config, tmp_path):
    from server import create_app

    issued: list[dict] = []
    row_id = "3d1feef9-604d-ef11-bfe3-6045bd03d9d8"
    row = {"@odata.etag": 'W/"1"', "opportunityid": row_id, "hrdd_enduser": "Fjord Retail AS",
           "hrdd_enduser_country": "NO", "hrdd_productcode": "ST-10", "hrdd_productname": "ArchiveBox 10",
           "hrdd_capabilities": "data_storage", "salesstage": 0,
           "salesstage@OData.Community.Display.V1.FormattedValue": "Qualify"}
    path = f"/api/data/v9.2/opportunities({row_id})"
    routes = {("POST", "/contoso-tenant/oauth2/v2.0/token"): token_endpoint(issued), ("GET", path): (200, row),
              ("PATCH", path): (204, b"")}
    with FakeServer(routes) as fake:
        text = guide_yaml("dynamics", "3.")
        for host in ("https://contoso.crm4.dynamics.com", "https://login.microsoftonline.com"):
            text = text.replace(host, fake.url)
        (tmp_path / "adapters.yaml").write_text(text.replace("<tenant>", "contoso-tenant"), encoding="utf-8")
        app_config.update(HRDD_ADAPTERS_FILE=str(tmp_path / "adapters.yaml"), DV_CLIENT_ID=CLIENT_ID,
                          DV_CLIENT_SECRET=CLIENT_SECRET, HRDD_ADAPTER_DYNAMICS_AUTH_HEADER="x-hrdd-key",
                          HRDD_ADAPTER_DYNAMICS_AUTH_KEY="dv-key")
        app = create_app(app_config)
        context = json.loads(fixture_bytes("dynamics/opportunity_create.json"))
        context["InputParameters"] = []
        r = app.test_client().post("/v1/hooks/dynamics", data=json.dumps(context), headers={
            "Content-Type": "application/json", "x-hrdd-key": "dv-key", "x-ms-dynamics-msg-size-exceeded": "true"})
        assert r.status_code == 202 and r.json["results"][0]["status"] == "screened"
        assert run_worker(app)["writeback"] == {"delivered": 1, "retrying": 0, "failed": 0}
    assert issued[0]["scope"] == f"{fake.url}/.default" and issued[0]["client_secret"] == CLIENT_SECRET
    calls = [(q["method"], q["path"]) for q in fake.requests if q["path"] == path]
    assert calls == [("GET", path), ("PATCH", path)]
    assert all(q["headers"]["authorization"] == f"Bearer {ACCESS_TOKEN}" for q in fake.requests
               if q["path"] == path)
    assert json.loads(fake.requests[-1]["body"])["hrdd_gate"] in ("release", "release_with_conditions")


def test_guides_show_no_setting_that_would_be_masked_as_a_url():
    from hrdd.adapters.config import is_secret_name

    for guide in GUIDES.glob("*.md"):
        for name in re.findall(r"\b([a-z_]*url)\s*:", guide.read_text(encoding="utf-8")):
            assert not is_secret_name(name), f"{guide.name}: {name}"


@pytest.mark.parametrize("guide", [*sorted(p.name for p in GUIDES.glob("*.md")), "README.md"])
def test_every_yaml_block_of_the_guides_loads_and_starts(guide, tmp_path):
    """Each guide's YAML is read as hrdd reads it: ``${VAR}`` unquoted in a {flow mapping} is not YAML."""
    from hrdd.adapters.config import check_urls, load_settings

    source = GUIDES / guide if guide != "README.md" else GUIDES.parent.parent / guide
    text = source.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert blocks or guide == "generic.md"
    for i, block in enumerate(blocks):
        path = tmp_path / f"{i}.yaml"
        path.write_text(block, encoding="utf-8")
        env = {name: "x" for name in re.findall(r"\$\{([A-Z0-9_]+)\}", block)}
        check_urls(load_settings({"HRDD_ADAPTERS_FILE": str(path), **env}))
