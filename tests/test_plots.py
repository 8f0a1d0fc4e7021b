"""The book's shared figures and tables: the forest plot draws every claim row, each
on its own scale with its decision lines, and tables read without cut cells or NaN."""

import math

import matplotlib
import numpy as np
import pandas as pd

from cgt import claims, plots, runs

matplotlib.use("Agg")


def _claim(kind: str, key: str = "cgantransfer-quality", **extra) -> claims.Claim:
    return claims.Claim("demo", key, f"a {kind} claim", kind, "FID", ("ours", "bsa"), **extra)


def _summary() -> pd.DataFrame:
    a, b = {0: 10.0, 1: 11.0, 2: 12.5}, {0: 14.0, 1: 15.5, 2: 15.0}
    results = [
        claims.superiority(_claim("superiority"), a, b),
        claims.equivalence(_claim("equivalence", margin=0.1), a, {k: v * 1.02 for k, v in a.items()}),
        claims.non_inferiority(_claim("non-inferiority", margin=0.1), a, b),
        claims.speed(_claim("speed", factor=1.5), {0: 100, 1: 90, 2: None}, {0: 300, 1: 280, 2: 310},
                     {0: 400, 1: 400, 2: 400}, {0: 400, 1: 400, 2: 400}),
        claims.superiority(_claim("superiority"), a, b,
                           [claims.Precondition("ours converged", False, "seed 1 still improving")]),
    ]
    return pd.DataFrame([r.as_dict() for r in claims.holm(results)]).reindex(
        columns=runs.SUMMARY_COLUMNS)


def test_the_forest_plot_draws_every_claim_row_with_its_interval_and_decision_lines():
    summary = _summary()
    fig = plots.claims_forest(summary)
    assert len(fig.axes) == len(summary)
    for ax, row in zip(fig.axes, summary.to_dict("records")):
        texts = " ".join(t.get_text() for t in ax.texts)
        assert row["claim"] in texts and row["verdict"] in texts
        if row["verdict"] == "untestable":  # no interval: the reason is written instead
            assert "seed 1 still improving" in texts and not ax.collections
            continue
        (bar,) = ax.collections  # the interval, from its low to its high end
        (segment,) = bar.get_segments()
        low, high = row["interval"]
        assert segment[0][0] == low
        assert segment[1][0] == (high if high is not None else ax.get_xlim()[1])
        drawn = sorted(line.get_xdata()[0] for line in ax.lines if len(line.get_xdata()) == 2)
        assert drawn == sorted(row["lines"])
    equivalence = summary[summary.kind == "equivalence"].iloc[0]
    assert list(equivalence["lines"]) == [1.0, 1 / 1.1, 1.1]


def test_a_readable_table_wraps_and_shows_missing_values_as_a_dash():
    long = "the interval of A − B includes 0 and " * 5
    table = pd.DataFrame({"claim": ["x", "y"], "estimate": [1.23456, math.nan],
                          "reason": [long, None], "interval": [(0.5, 2.0), None]})
    html = plots.readable_table(table).to_html()
    assert "nan" not in html.lower() and html.count("—") >= 3
    assert long.strip() in html  # whole, not cut at pandas' 50 characters
    assert "white-space: normal" in html and 'class="cgt-table"' in html
    assert "1.23" in html and "1.23456" not in html
    assert np.isnan(table["estimate"][1])  # the table itself is left as it was


def test_a_readable_table_keeps_labels_and_drops_a_meaningless_index():
    filtered = pd.DataFrame({"fid": [1.0, 2.0]}, index=[3, 7])  # rows left after a filter
    assert ">3<" not in plots.readable_table(filtered).to_html()
    grouped = pd.DataFrame({"method": ["a", "b"], "fid": [1.0, 2.0]}).set_index("method")
    html = plots.readable_table(grouped).to_html()
    assert ">method<" in html and ">a<" in html  # the group keys stay, as a column
    labelled = pd.DataFrame({"value": {"iterations": 50, "seconds": 3.5}})
    html = plots.readable_table(labelled).to_html()
    assert ">iterations<" in html and ">index<" not in html


def test_the_glance_table_has_one_row_per_claim_with_its_estimate_and_interval():
    summary = _summary()
    glance = plots.claims_glance(summary)
    assert len(glance) == len(summary) and list(glance["verdict"]) == list(summary["verdict"])
    superiority = glance.iloc[0]["estimate [interval]"]
    low, high = summary.iloc[0]["interval"]
    assert superiority == f"{summary.iloc[0]['estimate']:.3g} [{low:.3g}, {high:.3g}]"
    assert glance.iloc[-1]["estimate [interval]"] == "—"  # the untestable row: no interval


def test_the_summary_box_counts_verdicts_runs_and_states_its_scope():
    rows = [{"claim": "A beats B", "verdict": "supported", "seeds": 5, "kind": "superiority"},
            {"claim": "C matches D", "verdict": "untestable", "seeds": 3, "kind": "equivalence",
             "reason": "arm C never left its start"},
            {"claim": "an identity", "verdict": "supported", "seeds": 1, "kind": "exact"}]
    records = [{"chapter": "demo", "wall_time_s": 90.0, "device": "cpu (X)"},
               {"chapter": "demo", "wall_time_s": 30.0, "device": "cpu (X)"},
               {"chapter": "other", "wall_time_s": 600.0, "device": "cuda (Y)"}]
    box = plots.chapter_summary(rows, records, "demo", scope="the quick profile, 32 px")
    assert box.startswith(":::{admonition}") and box.endswith(":::")
    assert "**Claims judged:** 2 (1 supported, 1 untestable); paired seeds per claim: 3–5." in box
    assert "- **untestable**: C matches D (arm C never left its start)" in box
    assert "an identity" not in box  # exact checks are not the paper's claims
    assert "**Compute:** 2 runs, 2.0 wall minutes on cpu (X)." in box
    assert "**Scope:** the quick profile, 32 px" in box and "1 of 2 claims decided" in box
    assert "**Scope:**" not in plots.chapter_summary(rows, records, "demo")


def test_the_summary_box_says_which_checks_held_and_which_left_rows_untestable():
    claim = _claim("superiority")
    a, b = {0: 1.0, 1: 2.0, 2: 1.5}, {0: 3.0, 1: 4.0, 2: 3.5}
    moved = claims.adapted("C", {0: [(0, 2.0), (10, 1.0)]}, {0: 10})
    stuck = claims.converged("C", {0: [(0, 2.0), (10, 1.5), (20, 1.0)]})  # still falling
    slow = claims.converged("D", {0: [(0, 2.0), (10, 1.5), (20, 1.0)]})
    scope = claims.Precondition("D is judged in the paper profile only", False)  # no arm's check
    rows = [claims.superiority(claim, a, b, [moved, stuck]).as_dict(),
            claims.superiority(claim, a, b, [moved, stuck, slow, scope]).as_dict(),
            claims.superiority(claim, a, b, [moved]).as_dict()]
    assert rows[0]["checks"] == [{"arm": "C", "check": "adapted", "holds": True},
                                 {"arm": "C", "check": "converged", "holds": False}]
    assert [r["verdict"] for r in rows] == ["untestable", "untestable", "supported"]
    worked, failed = plots.worked_and_failed(rows)
    assert worked == {"adapted": ["C"]} and failed == {"converged": {"C": 2, "D": 1}}
    box = plots.chapter_summary(rows, [], "demo")
    assert "**What worked** (in every row it gated): adapted: C." in box
    assert "**What did not** (rows it left untestable): converged: C (2), D (1)." in box
    assert "- **untestable**: a superiority claim (failed: C converged, D converged)" in box
    assert "paper profile" not in box.split("**What worked**")[1]  # scope is not an arm's failure
    # a check that held in one row and failed in another did not work for that arm
    fell = claims.adapted("C", {0: [(0, 2.0), (10, 3.0)]}, {0: 10})
    mixed = [rows[2], claims.superiority(claim, a, b, [fell]).as_dict()]
    assert plots.worked_and_failed(mixed) == ({}, {"adapted": {"C": 1}})
