"""The training ingredients of "Beyond the paper" judged from the study's run files by
rule 5 of docs/reproduction.md's protocol (`ingredient_rows`), for `study_tables`'
Markdown. Imports no TensorFlow."""

import itertools

from lesionseg_tf import report_comparison, stats

# "Beyond the paper" (docs/reproduction.md's protocol): the arm every training ingredient is
# judged against, and rule 5's margin (the shipped recipe's seed SD on held-out).
INGREDIENT_BASELINE = ("baseline64_seed0", "baseline64_seed1")
KEEP_MARGIN = 0.003
# Rule 6: a kept ingredient onto the best recipe so far, the paper's recipe as an ensemble of
# two networks (`--members=2`), two draws of it (networks 0-1 and 2-3).
ENSEMBLE_BASELINE = ("ensemble64_seeds01", "ensemble64_seeds23")


def _mean_holdout(runs):
    """The per-image held-out Jaccard averaged over `runs` (`report_comparison.seed_mean`)."""
    return report_comparison.seed_mean([r.holdout for r in runs], names=[r.name for r in runs])


def ingredient_rows(runs, *, baseline=INGREDIENT_BASELINE, same=()):
    """Rule 5 of the protocol, from the runs' files: every recipe that differs from the
    `baseline` runs' in one setting and has two or more runs scored on the held-out
    pairs, each arm's per-image held-out Jaccard averaged over its runs, then paired on
    the images (`stats.paired_comparison`); kept at `KEEP_MARGIN` or more with the
    interval above zero. Nothing where the baseline runs are missing. Rule 6 is the
    same against `ENSEMBLE_BASELINE` with `same=("networks",)`: only arms with the
    baseline's number of networks.

    Returns:
      `[{"recipe", "runs", "differs", "comparison", "kept"}]`, by recipe.
    """
    by_name = {r.name: r for r in runs}
    base = [by_name[name] for name in baseline if name in by_name]
    if len(base) < len(baseline) or any(r.holdout is None for r in base):
        return []
    reference = _mean_holdout(base)
    rows = []
    for recipe, group in itertools.groupby(
        sorted(runs, key=lambda r: r.recipe), lambda r: r.recipe
    ):
        arm = [r for r in group if r.holdout is not None and r.name not in baseline]
        differs = arm and [k for k, v in base[0].settings().items() if arm[0].settings()[k] != v]
        if len(arm) < 2 or len(differs) != 1 or differs[0] in same:
            continue
        comparison = stats.paired_by_image(
            _mean_holdout(arm),
            second=reference,
            mismatch=f"{recipe}: scored on other held-out pairs than {baseline}",
        )
        kept = comparison["mean_difference"] >= KEEP_MARGIN and comparison["interval"][0] > 0
        rows.append(
            {
                "recipe": recipe,
                "runs": [r.name for r in arm],
                "differs": differs,
                "comparison": comparison,
                "kept": kept,
            }
        )
    return rows


def _bound(value):
    """An interval's end to 4 decimals, or to 5 where 4 would print a nonzero end as
    zero (the rule reads its sign)."""
    return f"{value:+.5f}" if value and round(value, 4) == 0 else f"{value:+.4f}"


def markdown_lines(runs):
    """The tables of `ingredient_rows`, rule 5's and rule 6's, as Markdown lines (a blank
    line before each), or none."""
    return _table(
        ingredient_rows(runs),
        title='The training ingredients of "Beyond the paper" judged on the held-out pairs (rule '
        "5 of docs/reproduction.md's protocol: each arm's per-image Jaccard averaged over its "
        f"runs, against {' and '.join(INGREDIENT_BASELINE)} averaged so; kept at +{KEEP_MARGIN} "
        "or more with the interval above zero; 2000 resamples, seed 0):",
    ) + _table(
        ingredient_rows(runs, baseline=ENSEMBLE_BASELINE, same=("networks",)),
        title="Kept ingredients onto the best recipe so far, the ensemble of two networks (rule 6: "
        f"each arm's ensembles averaged, against {' and '.join(ENSEMBLE_BASELINE)} averaged so; "
        "the same margin and interval):",
    )


def _table(rows, *, title):
    if not rows:
        return []
    lines = [
        "",
        title,
        "",
        "| recipe | runs | differs in | mean difference (95% CI) | kept |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        c = row["comparison"]
        low, high = c["interval"]
        lines.append(
            f"| {row['recipe']} | {', '.join(row['runs'])} | {', '.join(row['differs'])} | "
            f"{c['mean_difference']:+.4f} ({_bound(low)} to {_bound(high)}) | "
            f"{'yes' if row['kept'] else 'no'} |"
        )
    return lines
