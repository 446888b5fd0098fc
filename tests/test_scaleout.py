"""Two `hrdd serve` instances and two workers on one PostgreSQL: the database, not process memory, decides.

Concurrent duplicate deliveries (same Idempotency-Key, same adapter delivery id) sent to both instances
at once make exactly one screening each; workers on two processes deliver each write-back once; two
re-screening runs at once store one re-screening per deal; two reviewers deciding one case at once on
different instances make a linear chain of decisions; the rate limit is shared through Redis.
Skips, saying why, when PostgreSQL (or, for the rate limit, Redis) is not there.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from tests.scaleout_support import (
    GRIEVANCE,
    HRDD,
    ROOT,
    Client,
    FakeCrm,
    Instance,
    Schema,
    adapters_file,
    base_env,
    create_key,
    pg_unavailable,
    redis_unavailable,
    send_duplicates,
    verify_store,
)

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]
GRIEVANCE_LIMIT = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two instances started at the same moment on a fresh schema, a fake CRM, and API keys."""
    reason = pg_unavailable()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("scaleout")
    schema = Schema()
    crm = FakeCrm(delay=0.05)
    extra = {"HRDD_ADAPTERS_FILE": str(adapters_file(workdir, crm.url)),
             "HRDD_GRIEVANCE_RATE_LIMIT": f"{GRIEVANCE_LIMIT} per minute"}
    redis_reason = redis_unavailable()
    if redis_reason is None:
        extra.update(HRDD_RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                     HRDD_RATELIMIT_KEY_PREFIX=f"hrdd-test-{uuid.uuid4().hex[:8]}")
    env = base_env(schema.url, workdir, **extra)
    instances = [Instance("a", env, workdir), Instance("b", env, workdir)]
    try:
        # Started together on an empty schema: migrations and start-up records must not collide.
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        keys = {role: create_key(env, role) for role in ("crm", "reviewer")}
        yield {"schema": schema, "crm": crm, "env": env, "instances": instances, "keys": keys,
               "workdir": workdir, "redis": redis_reason}
    finally:
        for instance in instances:
            instance.stop()
        crm.close()
        schema.drop()


@pytest.fixture(scope="module")
def loaded(cluster):
    """60 deliveries, each sent 4 times at once (2 copies to each instance); the answers."""
    urls = [i.url for i in cluster["instances"]]
    records = send_duplicates(urls, cluster["keys"]["crm"], f"t{uuid.uuid4().hex[:6]}", 60, copies=4, threads=16)
    return records


def test_duplicate_deliveries_to_two_instances_make_one_screening_each(cluster, loaded):
    report = verify_store(cluster["schema"], loaded)
    assert report["problems"] == []
    assert report["requests"] == 240 and report["answered_2xx"] == 240, report["other_statuses"]
    assert report["screenings_stored"] == 60 and report["created_201"] == 60
    # The shipped restricted-party list is loaded into the empty store once, not once per instance.
    assert cluster["schema"].scalar("SELECT count(*) FROM party_list_versions") == 1
    # Both instances answered, and both created screenings: the race was real.
    creators = {r["instance"] for r in loaded if r["status"] == 201}
    assert len(creators) == 2


def test_workers_in_two_processes_deliver_each_writeback_once(cluster, loaded):
    schema, crm = cluster["schema"], cluster["crm"]
    pending = schema.scalar("SELECT count(*) FROM outbox WHERE status = 'pending'")
    assert pending == 60
    before = len(crm.received)
    # The rows fall due once both workers are up and polling, so both compete for them.
    with schema.engine.begin() as conn:
        conn.execute(sa.text("UPDATE outbox SET next_attempt_at = now() + interval '10 seconds'"))
    workers = [subprocess.Popen([*HRDD, "worker", "--interval", "0.2"], env=cluster["env"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and schema.scalar("SELECT count(*) FROM outbox WHERE status <> "
                                                            "'delivered'"):
            time.sleep(0.3)
    finally:
        outputs = []
        for worker in workers:
            worker.terminate()
            outputs.append(worker.communicate(timeout=20)[0])
    delivered_by = [sum(json.loads(line)["writeback"]["delivered"] for line in out.splitlines()
                        if line.startswith("{") and "writeback" in line) for out in outputs]
    assert schema.scalar("SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0
    assert len(crm.received) - before == 60, "each outbox row is sent to the CRM exactly once"
    assert sum(delivered_by) == 60 and all(delivered_by), delivered_by


def test_two_rescreening_runs_at_once_store_one_rescreening_per_deal(cluster, loaded):
    schema = cluster["schema"]
    deals = schema.scalar("SELECT count(DISTINCT transaction_id) FROM screenings")
    # A new policy version: every deal's re-screening differs from its last screening and is stored.
    policy = cluster["workdir"] / "policy.yaml"
    policy.write_text((ROOT / "policy" / "default.yaml").read_text().replace(
        'version: "2026.11-default"', 'version: "2026.12-rescreen-test"'))
    env = {**cluster["env"], "HRDD_POLICY_FILE": str(policy)}
    runs = [subprocess.Popen([*HRDD, "rescreen", "--stage", "quote"], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert all("examined" in out for out in outputs), outputs
    assert schema.scalar("SELECT count(*) FROM screenings WHERE source = 'rescreen'") == deals
    per_deal = schema.scalar("SELECT max(n) FROM (SELECT count(*) AS n FROM screenings WHERE source = 'rescreen' "
                             "GROUP BY transaction_id) c")
    assert per_deal == 1


def test_two_reviewers_deciding_one_case_on_two_instances_chain_their_decisions(cluster, loaded):
    schema = cluster["schema"]
    case_ids = [row[0] for row in schema.rows("SELECT id FROM cases WHERE status = 'open' ORDER BY id LIMIT 6")]
    assert len(case_ids) == 6
    headers = {"Authorization": f"Bearer {cluster['keys']['reviewer']}", "Content-Type": "application/json"}
    statuses = []

    def decide(url, case_id, barrier, outcome):
        barrier.wait()
        body = json.dumps({"decision": outcome, "rationale": f"Reviewed on {url}: end-user record checked",
                           "conditions": "Annual audit" if outcome == "approve_with_conditions" else ""})
        statuses.append(Client(url).request("POST", f"/v1/cases/{case_id}/decision", body.encode(), headers)[0])

    for case_id in case_ids:
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=decide, args=(instance.url, case_id, barrier, outcome))
                   for instance, outcome in zip(cluster["instances"], ("approve", "approve_with_conditions"),
                                                strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert statuses == [201] * 12
    for case_id in case_ids:
        rows = schema.rows("SELECT id, supersedes FROM case_decisions WHERE case_id = :c", c=case_id)
        first = [r for r in rows if r.supersedes is None]
        assert len(rows) == 2 and len(first) == 1, "decisions must form one chain, not two branches"
        assert [r.supersedes for r in rows if r.supersedes is not None] == [first[0].id]
    report = verify_store(schema, loaded)
    assert not [p for p in report["problems"] if p.startswith("audit")]


def test_rate_limit_is_shared_through_redis(cluster):
    if cluster["redis"]:
        pytest.skip(cluster["redis"])
    a, b = (Client(i.url) for i in cluster["instances"])
    body = json.dumps(GRIEVANCE).encode()
    statuses = [(a if n % 2 == 0 else b).request("POST", "/v1/grievances", body,
                                                 {"Content-Type": "application/json"})[0] for n in range(12)]
    # Counted per process, each instance would accept 6 (12 in all); shared, the two accept 6 together.
    assert statuses.count(201) == GRIEVANCE_LIMIT and statuses.count(429) == 12 - GRIEVANCE_LIMIT, statuses
