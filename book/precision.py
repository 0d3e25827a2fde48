# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # How precise is this book?
#
# Every verdict in this book compares training runs over seeds, and a training run is a noisy
# measuring instrument. Before trusting a verdict such as "better by 0.098 [0.046, 0.151]", a reader
# should know how much one run can move on its own. Three things move it:
#
# * **Training chaos.** Retrain the same seed on the same data with the same initialisation and batch
#   order, but let the arithmetic round in another order (two CPU threads instead of one, another GPU,
#   another library version): a small network lands somewhere else. A verdict that flips under this is
#   not a finding.
# * **The draw of the seed.** Each seed draws its own SynthAV data set and initialisation; the spread
#   over seeds is what the intervals of the chapters measure.
# * **What the test split can tell.** Clips that share a speaker share their voice and its way of
#   sounding the classes, so they are right or wrong together. A test split of six voices behaves like a
#   handful of independent clips, however many clips it holds.
#
# This appendix measures all three for the book's regimes, from the three baselines (audio only,
# visual only, joint concatenation) on the ten evaluation seeds, every joint run retrained with two
# threads. The numbers come from a stored study (`python -m mmlesson.precision`, about 15 minutes on
# two cores), which the cell below reads; nothing here is typed in by hand.

# %% tags=[]
import pandas as pd

from mmlesson.chapter import Chapter, check_targets, preregistration, render_targets, show_markdown, targets_for
from mmlesson.precision import glance_stability, precision_table

study = Chapter.stored("precision")
glance = Chapter.stored("at a glance")
table = precision_table(study, glance)
table.round(3).T  # one column per regime

# %% [markdown] tags=[]
# The *first calibration* of the severe regime ("severe") is the one the book's chapters ran before the
# second replaced it; the mild regime is the control where joint training already works; "severe v2"
# is the second calibration, built for precision (below), which every chapter now runs and on which
# Chapter 6's matched study judges every remedy ("severe v2, protocol rate": at the one rate the
# chapters train at). The paired spreads are those of every method against joint training in
# the results at a glance where the regime has them (severe, mild), else of the two unimodal baselines.

# %% tags=["remove-input"]
def regime_sentence(name: str) -> str:
    row, blocks = table.loc[name], study[name]["speaker_blocks"]
    effective = sorted(block["effective_clips"] for block in blocks)
    speakers = blocks[0]["speakers"]
    split = (f"the test split has no speakers (every clip on its own)" if speakers == blocks[0]["clips"] else
             f"the test split holds {speakers} speakers and measures like {effective[len(effective) // 2]:.0f} "
             f"independent clips (median over seeds, of {blocks[0]['clips']})")
    return (f"**{name}**: a joint run retrained with two threads moves its fused test accuracy by "
            f"{row['re-execution change (mean |change|)']:.3f} on average; over seeds it varies by "
            f"{row['sd over seeds, joint fused']:.3f}; validation and test accuracy correlate at r = "
            f"{row['validation-test r']:+.2f}; {split}; a paired difference with joint training "
            f"({row['paired spreads of']}) has a spread of {row['paired spread vs joint, median']:.3f} (median), so ten seeds "
            f"give ±{row['half-width at 10 seeds, median']:.3f} and ±0.03 needs about "
            f"{row['seeds for ±0.03, median']} seeds.")


show_markdown("\n\n".join(regime_sentence(name) for name in table.index))

# %% [markdown] tags=[]
# ## Why the first calibration measured noise
#
# In the first calibration every split had six speakers, two of whom sound every class shifted. The
# audio network learns the six training voices and their shifts; on the six unseen voices of the test
# split it is right or wrong speaker by speaker. The per-speaker accuracy of the joint model on the
# first evaluation seeds shows the blocks:

# %% tags=["remove-input"]
blocks = pd.DataFrame({f"seed {block['seed']}": block["per_speaker"] for block in study["severe"]["speaker_blocks"][:5]},
                      index=[f"test speaker {s}" for s in range(study["severe"]["speaker_blocks"][0]["speakers"])])
blocks.round(2)

# %% tags=["remove-input"]
severe = study["severe"]["speaker_blocks"]
spread = sorted(block["per_speaker_sd"] for block in severe)
show_markdown(f"Across a seed's six test speakers the joint model's accuracy varies by {spread[len(spread) // 2]:.2f} "
              f"(median sd over seeds): which voices a test split holds decides much of its score, and validation "
              f"(six other voices) predicts it poorly (validation-test r = "
              f"{table.loc['severe', 'validation-test r']:+.2f} over seeds).")

# %% [markdown] tags=[]
# ## The second calibration
#
# The fix is in the test split, not in the model: validation and test now hold 800 unseen voices each
# (`eval_speakers`), so audio's errors come in many small blocks; 24 voice bins keep new voices apart
# from the six training ones, and 1,200 training clips for 16 epochs (the same number of clip-epochs
# as before) with a fainter grating keep the visual encoder starving. The regime was chosen on tuning
# seeds with the baselines only, by a rule written down before its last runs, and frozen with its
# targets in a dated section of the preregistration before any remedy was trained on it. Its
# signature on the evaluation seeds, against those targets:

# %% tags=[]
v2 = study["severe v2"]
targets = check_targets(v2, targets_for(preregistration(), v2["recipe"]))
print(render_targets(targets))

# %% tags=["remove-input"]
missed = [row["target"] for row in targets if row["met"] is False]
met = sum(1 for row in targets if row["met"])
paradox = v2[v2["weak"]]["alone"] - v2[v2["dominant"]]["alone"]
show_markdown(
    f"The second calibration meets {met} of its {len(targets)} preregistered targets"
    + (f"; it misses {', '.join(f'`{name}`' for name in missed)}." if missed else ".")
    + f" Its weak modality is {v2['weak']}, starved by "
      f"{v2['rows']['weak alone minus joint branch']['mean']:.3f} (alone minus its joint branch), and alone it is "
      f"{abs(paradox):.3f} {'better' if paradox > 0 else 'worse'} than the dominant modality alone "
      f"(CREMA-D: visual 0.622 alone against audio 0.573). Compared with the first calibration, a joint run's "
      f"spread over seeds fell from {table.loc['severe', 'sd over seeds, joint fused']:.3f} to "
      f"{table.loc['severe v2', 'sd over seeds, joint fused']:.3f}, its change under a re-execution from "
      f"{table.loc['severe', 're-execution change (mean |change|)']:.3f} to "
      f"{table.loc['severe v2', 're-execution change (mean |change|)']:.3f}, and the validation-test correlation "
      f"rose from {table.loc['severe', 'validation-test r']:+.2f} to {table.loc['severe v2', 'validation-test r']:+.2f}.")

# %% [markdown] tags=[]
# ## What the second calibration tried
#
# Every candidate regime the calibration trained, on its tuning seeds (100-104 for most, 100-109 for
# the two finalists; the table gives each count), with the baselines only (`mmlesson/grids/synthav-severe-v2-calibration.csv`): its knobs
# on top of the first calibration's, the visual modality's starvation (target at least 0.20) and its
# joint branch above chance (at most 0.08), the joint model's fused spread over seeds (at most 0.03),
# the unimodal ensemble over the better unimodal model (at least 0.05) and, where joint runs were
# re-executed with two threads, their mean change (at most 0.02). Five seeds estimate a spread
# loosely, so a single row's spread is a hint, not a measurement.

# %% tags=[]
from mmlesson.precision import calibration_candidates

tried = calibration_candidates()
tried.drop(columns="knobs").round(3)

# %% tags=["remove-input"]
disease = (tried["visual starvation"] >= 0.20) & (tried["visual branch minus chance"] <= 0.08)
precise = tried["joint fused sd"] <= 0.03
room = tried["ensemble minus best unimodal"] >= 0.05
calmest = tried.sort_values("joint fused sd").head(2)
show_markdown(
    f"Of {len(tried)} candidates, {int(disease.sum())} kept the disease on their tuning seeds (starvation at least "
    f"0.20 and a joint visual branch within 0.08 of chance), {int(precise.sum())} had a fused spread of at most "
    f"0.03, {int(room.sum())} left the unimodal ensemble at least 0.05 above the better unimodal model, and "
    f"{int((disease & precise & room).sum())} did all three. The two calmest candidates ("
    + ", ".join(f"`{name}`: spread {row['joint fused sd']:.3f}, visual branch {row['visual branch minus chance']:.3f} "
                f"above chance" for name, row in calmest.iterrows())
    + (") both let the visual branch rise above the 0.08 the targets allow: in these trials a precise fused accuracy "
       "and a starving visual encoder did not come together." if (calmest["visual branch minus chance"] > 0.08).all()
       else ").")
    + f" The chosen regime's spread on the evaluation seeds is "
      f"{table.loc['severe v2', 'sd over seeds, joint fused']:.3f}. Meeting every target at once may need another "
      f"design of the dominant modality's errors (for example speakers shared across splits, so that audio's test "
      f"errors are per clip rather than per voice), which this book leaves to a third calibration, preregistered "
      f"before its runs.")

# %% [markdown] tags=[]
# The preregistered protocol trains every arm of the second calibration at one learning rate, the one at
# which joint training does best on validation over the ten tuning seeds (a baseline chooses it, so no
# remedy's result does). The same baselines at that rate:

# %% tags=["remove-input"]
at_rate = study["severe v2, protocol rate"]
rate_targets = check_targets(at_rate, targets_for(preregistration(), at_rate["recipe"]))
rate_missed = [row["target"] for row in rate_targets if row["met"] is False]
show_markdown(
    f"At the protocol rate ({at_rate['train']['lr']:g}, against the calibration's 0.1) the joint model's fused accuracy "
    f"varies by {table.loc['severe v2, protocol rate', 'sd over seeds, joint fused']:.3f} over seeds and moves by "
    f"{table.loc['severe v2, protocol rate', 're-execution change (mean |change|)']:.3f} under a re-execution; the "
    f"visual branch sits {at_rate['visual']['branch'] - at_rate['chance']:.3f} above chance, starved by "
    f"{at_rate['rows']['weak alone minus joint branch']['mean']:.3f}. Held to the same targets it meets "
    f"{sum(1 for row in rate_targets if row['met'])} of {len(rate_targets)}"
    + (f" (missing {', '.join(f'`{name}`' for name in rate_missed)})." if rate_missed else ".")
    + " The targets are judged at the calibration's rate, as preregistered; this row says what the chapters' "
      "comparisons rest on.")

# %% [markdown] tags=[]
# ## Stable and fragile verdicts
#
# A verdict is *stable* when a re-execution of every run behind it is predicted to keep it with
# probability at least 0.9, *fragile* otherwise (`mmlesson.stats.with_stability`: given the seeds'
# paired differences and the measured spread of a re-execution, the re-executed family is drawn and
# judged by the same rule, Holm included). Applied to the first calibration's results at a glance,
# every arm's re-execution spread taken as the joint baseline's (that study did not re-execute the
# remedies; the matched study below does):

# %% tags=[]
severe_rerun = study["severe"]["precision"]["rerun_sd_change_fused"]
for comparison in glance_stability(glance, "severe", severe_rerun):
    print(f"- {comparison.claim}: {comparison.verdict_text()}")

# %% tags=["remove-input"]
labelled = glance_stability(glance, "severe", severe_rerun)
stable = [c for c in labelled if c.stable]
mild = glance_stability(glance, "mild", study["mild"]["precision"]["rerun_sd_change_fused"])
show_markdown(f"In the first severe calibration {len(stable)} of its {len(labelled)} fused-accuracy comparisons with "
              f"joint training are stable; in the mild regime {sum(1 for c in mild if c.stable)} of {len(mild)} are. "
              f"Chapters 1-5 label each verdict between separately trained runs the same way, from the joint baseline's "
              f"re-execution spread at their one protocol rate.")

# %% [markdown] tags=[]
# ## Each arm's own re-execution: the matched study
#
# Chapter 6's matched study retrains every arm of its first ten seeds with two threads, so each claim
# carries the re-execution spread of its own two arms, not the joint baseline's. How far a
# re-execution moves each arm, in the second severe calibration and in the mild regime under the
# same protocol:

# %% tags=[]
from mmlesson.chapter import matched

matched_study = Chapter.stored("matched")
pd.concat({regime: matched.arm_rerun_changes(matched_study, regime) for regime in matched.REGIMES}, axis=1).round(3)

# %% [markdown] tags=[]
# And per claim and endpoint, over the twenty evaluation seeds: the spread of the paired differences,
# the half-width of the 95% interval it gives, the spread a re-execution adds to a paired difference,
# and the probability that a re-execution keeps the verdict.

# %% tags=[]
rows = pd.concat({regime: matched.precision_rows(matched_study, regime) for regime in matched.REGIMES})
rows.round(3)

# %% tags=["remove-input"]
primary = rows[rows["endpoint"] != "fused"]
within = primary[primary["half-width"] <= 0.03]
fused = rows[rows["endpoint"] == "fused"]
show_markdown(
    f"With twenty seeds, {len(within)} of the {len(primary)} primary-endpoint claims (visual branch and probe) have an "
    f"interval of half-width at most 0.03 (largest {primary['half-width'].max():.3f}); the fused-accuracy claims "
    f"reach half-widths of {fused['half-width'].min():.3f}-{fused['half-width'].max():.3f}. "
    f"{int((rows['survival'] >= 0.9).sum())} of {len(rows)} verdicts are stable. A re-execution moves an arm's fused "
    f"accuracy by {matched.arm_rerun_changes(matched_study, 'severe v2')['fused: mean |change|'].median():.3f} "
    f"(median over arms) in the severe regime and by "
    f"{matched.arm_rerun_changes(matched_study, 'mild v2')['fused: mean |change|'].median():.3f} in the mild one.")

# %% [markdown] tags=[]
# ## What we found
#
# The findings below are formatted from the stored study.

# %% tags=["remove-input"]
show_markdown("\n".join([
    f"1. In the first severe calibration a test split of {severe[0]['speakers']} voices measures like "
    f"{sorted(b['effective_clips'] for b in severe)[len(severe) // 2]:.0f} independent clips, and a joint run moves by "
    f"{table.loc['severe', 're-execution change (mean |change|)']:.3f} when only the rounding changes: its "
    f"fused-accuracy verdicts needed about {table.loc['severe', 'seeds for ±0.03, median']} seeds for ±0.03.",
    f"2. The mild regime is precise: re-execution {table.loc['mild', 're-execution change (mean |change|)']:.3f}, "
    f"spread over seeds {table.loc['mild', 'sd over seeds, joint fused']:.3f}.",
    f"3. The second severe calibration keeps the disease (visual starved by "
    f"{v2['rows']['weak alone minus joint branch']['mean']:.3f}) and meets {met} of {len(targets)} targets; "
    f"±0.03 on a paired difference needs about {table.loc['severe v2', 'seeds for ±0.03, median']} seeds.",
    f"4. {len(stable)} of {len(labelled)} of the first severe calibration's fused-accuracy verdicts against joint "
    f"training are stable under a re-execution.",
    f"5. In the matched study (twenty seeds, each arm re-executed), {len(within)} of {len(primary)} primary-endpoint "
    f"claims are within ±0.03 and {int((rows['survival'] >= 0.9).sum())} of {len(rows)} verdicts are stable.",
]))
