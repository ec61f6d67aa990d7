"""Campaigns that decide (issue #16), end to end through the real app on a real uvicorn: requests
assigned to two variants, feedback where one is clearly better, the statistics in the results
(checked against scipy on the posted data), the stop rule ending the campaign with its winner,
later requests going to the winner, preferences between completions, and the report page drawn
by headless Chromium. With equal variants nothing stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scipy import stats as sps  # type: ignore[import-untyped]

from tests.conftest import AUTH, emulated_aws, put_project
from tests.experiments.conftest import ARTIFACTS
from tests.experiments.test_report import CHROMIUM_TIMEOUT_S, _check_drawn, _chromium, _parse, _run
from tests.servers import serve_app

DECIDED = "5b2c1d7e-16a0-4e1e-9c3a-000000000016"
EVEN = "5b2c1d7e-16a0-4e1e-9c3a-000000000017"
N = 12  # min_samples: the stop rule can decide on the last thumbs_up of the second variant
# thumbs_up per completion: `good` liked 10 of 12, `bad` 3 of 12; stars spread around 4.1 and 3.2.
LIKED = {"good": [i % 6 != 3 for i in range(N)], "bad": [i % 4 == 0 for i in range(N)]}
STARS = {
    "good": [4.1 + ((i * 7) % 11 - 5) * 0.1 for i in range(N)],
    "bad": [3.2 + ((i * 5) % 13 - 6) * 0.12 for i in range(N)],
}


def project(name: str, campaign_id: str) -> dict[str, Any]:
    return {
        "project": name,
        "default_model": "base",
        "models": {
            "base": {"provider": "echo", "prefix": "base: "},
            "good": {"provider": "echo", "prefix": "good: "},
            "bad": {"provider": "echo", "prefix": "bad: "},
        },
        "campaigns": {
            "bakeoff": {
                "id": campaign_id,
                "variants": {"bad": 1, "good": 1},
                "control": "bad",
                "stop": {"metric": "thumbs_up", "min_samples": N, "confidence": 0.95},
                "then": "winner",
            }
        },
    }


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """A fresh emulated stack per test (moto copies every table on each transaction: a small table
    keeps the feedback cheap) and the real app on uvicorn."""
    with emulated_aws(monkeypatch):
        from handler.wiring import create_app

        put_project(project("bake", DECIDED))
        put_project(project("even", EVEN))
        put_project({"project": "other", "default_model": "m", "models": {"m": {"provider": "echo"}}})
        with serve_app(create_app()) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
            yield client


def chat(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post(
        "/api/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], **body}
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def served(body: dict[str, Any]) -> tuple[str, str]:
    choice = body["choices"][0]
    return str(choice["model"]).split("/", 1)[1], str(choice["completion_id"])


def completions_per_variant(client: httpx.Client, name: str) -> dict[str, list[str]]:
    """`N` stored completions of each variant, assigned by the campaign (one session each)."""
    ids: dict[str, list[str]] = {"good": [], "bad": []}
    i = 0
    while min(len(v) for v in ids.values()) < N:
        i += 1
        variant, cid = served(chat(client, model=name, session_id=str(uuid.UUID(int=i))))
        if len(ids[variant]) < N:
            ids[variant].append(cid)
        assert i < 200, ids
    return ids


def feedback(client: httpx.Client, cid: str, metric: str, value: float | bool) -> None:
    r = client.post("/api/v1/feedback", json={"completion_id": cid, "metric": metric, "value": value})
    assert r.status_code == 200, r.text


def results(client: httpx.Client, name: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/projects/{name}/ab_campaigns/bakeoff/results")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def metric(stats: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in stats["metrics"] if m["metric"] == name)
    return found


def test_a_clearly_better_variant_is_significant_stops_the_campaign_and_takes_the_traffic(
    gateway: httpx.Client, tmp_path: Path
) -> None:
    client = gateway
    ids = completions_per_variant(client, "bake")
    for variant in ("good", "bad"):
        for cid, stars in zip(ids[variant], STARS[variant], strict=True):
            feedback(client, cid, "stars", stars)
    # thumbs_up alternating; just before the last one `bad` has N - 1 values: still running.
    for i in range(N):
        feedback(client, ids["good"][i], "thumbs_up", LIKED["good"][i])
        if i == N - 1:
            before = results(client, "bake")
            assert before["statistics"]["status"] == "active"
            assert f"waiting for {N} values" in before["statistics"]["stop"]["reason"]
        feedback(client, ids["bad"][i], "thumbs_up", LIKED["bad"][i])

    data = results(client, "bake")
    assert data["campaign"]["status"] == "completed"
    requests_at_stop = data["requests"]
    assert {v["variant"]: v["feedback"]["thumbs_up"]["count"] for v in data["variants"]} == {
        "bad": N,
        "good": N,
    }
    stats = data["statistics"]
    assert (stats["status"], stats["winner"], stats["control"]) == ("completed", "good", "bad")
    assert stats["stop"]["done"] is True and stats["stop"]["winner"] == "good"

    # thumbs_up: 0/1 values, the pooled two-proportion z-test (computed here with scipy's normal).
    thumbs = metric(stats, "thumbs_up")
    assert (thumbs["kind"], thumbs["test"]) == ("binary", "two_proportion_z")
    (cmp,) = thumbs["comparisons"]
    assert (cmp["variant"], cmp["control"], cmp["significant"]) == ("good", "bad", True)
    k1, k0 = sum(LIKED["good"]), sum(LIKED["bad"])
    pooled = (k1 + k0) / (2 * N)
    z = (k1 / N - k0 / N) / (pooled * (1 - pooled) * (2 / N)) ** 0.5
    assert cmp["diff"] == pytest.approx(k1 / N - k0 / N, abs=1e-9)
    assert cmp["p_value"] == pytest.approx(2 * sps.norm.sf(abs(z)), abs=1e-6)
    assert cmp["p_value"] < 0.01
    for row in thumbs["variants"]:  # Wilson intervals
        ci = sps.binomtest(sum(LIKED[row["variant"]]), N).proportion_ci(0.95, method="wilson")
        assert (row["ci"]["low"], row["ci"]["high"]) == pytest.approx((ci.low, ci.high), abs=1e-6)

    # stars: continuous, Welch's t-test and Student t intervals, against scipy on the posted values.
    stars = metric(stats, "stars")
    assert (stars["kind"], stars["test"]) == ("continuous", "welch_t")
    for row in stars["variants"]:
        values = STARS[row["variant"]]
        mean = sum(values) / N
        low, high = sps.t.interval(0.95, N - 1, loc=mean, scale=sps.sem(values))
        assert row["n"] == N
        assert row["mean"] == pytest.approx(mean, abs=1e-6)
        assert (row["ci"]["low"], row["ci"]["high"]) == pytest.approx((low, high), abs=1e-6)
    (welch,) = stars["comparisons"]
    reference = sps.ttest_ind(STARS["good"], STARS["bad"], equal_var=False)
    ci = reference.confidence_interval(0.95)
    assert welch["p_value"] == pytest.approx(reference.pvalue, abs=1e-6)
    assert welch["statistic"] == pytest.approx(reference.statistic, abs=1e-6)
    assert welch["df"] == pytest.approx(reference.df, abs=1e-6)
    assert (welch["ci"]["low"], welch["ci"]["high"]) == pytest.approx((ci.low, ci.high), abs=1e-6)

    # Later requests: `model: "bake"` and naming the campaign both go to the winner, uncounted.
    assert served(chat(client, model="bake", session_id=str(uuid.uuid4())))[0] == "good"
    assert served(chat(client, model="bake", ab_campaign="bakeoff"))[0] == "good"
    assert results(client, "bake")["requests"] == requests_at_stop

    # Preferences between the two variants' completions: `good` preferred 9 times, `bad` once, 2 ties.
    assert N >= 12

    def compare(preferred: str, other: str, **extra: Any) -> httpx.Response:
        body = {"metric": "helpful", "preferred_completion": preferred, "other_completion": other}
        return client.post("/api/v1/comparison", json={**body, "project": "bake", **extra})

    for i in range(9):
        r = compare(ids["good"][i], ids["bad"][i])
        assert r.status_code == 201, r.text
        uuid.UUID(r.json()["comparison_id"])
    assert compare(ids["bad"][9], ids["good"][9]).status_code == 201
    for i in (10, 11):
        assert compare(ids["good"][i], ids["bad"][i], tied="good").status_code == 201
    (pair,) = results(client, "bake")["statistics"]["preferences"]
    assert (pair["variant_a"], pair["variant_b"], pair["metric"]) == ("bad", "good", "helpful")
    assert (pair["wins"], pair["losses"], pair["ties"], pair["n"]) == (1, 9, 2, 12)
    assert pair["win_rate"] == pytest.approx(2 / 12)  # ties count half
    wilson = sps.binomtest(2, 12).proportion_ci(0.95, method="wilson")
    assert (pair["ci"]["low"], pair["ci"]["high"]) == pytest.approx((wilson.low, wilson.high), abs=1e-6)
    assert pair["p_value"] == pytest.approx(sps.binomtest(1, 10).pvalue, abs=1e-6)

    # The report page: HTML, nothing to fetch, drawn by a browser.
    page = client.get("/api/v1/projects/bake/ab_campaigns/bakeoff/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "Winner: <strong" in page.text
    chromium = _chromium()
    if chromium is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium); the served report is not rendered"
        )
    from handler.experiments.results import CampaignStatistics

    file = tmp_path / "served-report.html"
    file.write_text(page.text, encoding="utf-8")
    dumped = _run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            file.as_uri(),
        ],
        CHROMIUM_TIMEOUT_S,
    )
    assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")[-2000:]
    dom = _parse(dumped.stdout.decode())
    _check_drawn(dom, CampaignStatistics.model_validate(results(client, "bake")["statistics"]))
    assert "Winner: good" in dom.all_text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "served_campaign_report.html").write_text(page.text, encoding="utf-8")


def test_equal_variants_do_not_stop(gateway: httpx.Client) -> None:
    client = gateway
    ids = completions_per_variant(client, "even")
    same = [i % 2 == 0 for i in range(N)]
    for i in range(N):
        for variant in ("good", "bad"):
            feedback(client, ids[variant][i], "thumbs_up", same[i])
    data = results(client, "even")
    stats = data["statistics"]
    assert data["campaign"]["status"] == "active"
    assert (stats["status"], stats["winner"]) == ("active", None)
    assert stats["stop"]["done"] is False
    (cmp,) = metric(stats, "thumbs_up")["comparisons"]
    assert cmp["diff"] == 0 and cmp["p_value"] == pytest.approx(1.0) and cmp["significant"] is False
    seen = {served(chat(client, model="even", session_id=str(uuid.UUID(int=1000 + i))))[0] for i in range(12)}
    assert seen == {"good", "bad"}  # still split


def test_a_comparison_needs_two_completions_of_the_project(gateway: httpx.Client) -> None:
    client = gateway
    _, mine = served(chat(client, model="bake/base"))
    _, theirs = served(chat(client, model="other"))
    missing = str(uuid.uuid4())

    def compare(preferred: str, other: str) -> httpx.Response:
        body = {"metric": "helpful", "preferred_completion": preferred, "other_completion": other}
        return client.post("/api/v1/comparison", json={**body, "project": "bake"})

    foreign, unknown = compare(mine, theirs), compare(mine, missing)
    assert foreign.status_code == unknown.status_code == 404
    # Another project's completion answers exactly like a missing one (only the id differs).
    assert foreign.json() == {
        **unknown.json(),
        "error": {
            **unknown.json()["error"],
            "message": unknown.json()["error"]["message"].replace(missing, theirs),
        },
    }
    assert foreign.json()["error"]["param"] == "other_completion"
    assert foreign.json()["error"]["message"].startswith("EntityNotFound")
    assert compare(theirs, mine).json()["error"]["param"] == "preferred_completion"
    same = compare(mine, mine)
    assert same.status_code == 400 and same.json()["error"]["param"] == "other_completion"
    bad = client.post(
        "/api/v1/comparison", json={"metric": "helpful", "preferred_completion": mine, "project": "bake"}
    )
    assert bad.status_code == 400 and "other_completion" in bad.json()["error"]["message"]
    tied = client.post(
        "/api/v1/comparison",
        json={
            "metric": "m",
            "preferred_completion": mine,
            "other_completion": mine,
            "project": "bake",
            "tied": "ok",
        },
    )
    assert tied.status_code == 400 and "tied" in tied.json()["error"]["message"]
