"""The assignment package format and its import."""

from __future__ import annotations

import shutil

import pytest
from django.core.management import call_command

from courseware.models import Part, PartVersion
from grader.parts import PartError, all_parts, build_known_wrong, content_hash, load_part, load_part_dir

from .conftest import MDN


def test_mdn_manifest_declares_interface_and_checks():
    part = load_part("mdn")
    assert part.module == "mdn.py"
    assert set(part.entry_points) == {"fit", "model.forward", "mixture_log_prob", "gaussian_nll",
                                      "fit_arm", "arm_model.forward", "arm_log_prob", "em_step"}
    assert part.entry_points["fit"].stores_object == "model"
    assert part.entry_points["fit_arm"].stores_object == "arm_model"
    assert part.entry_points["arm_model.forward"].returns[1].shape == ("B", "K", "2")
    forward = part.entry_points["model.forward"]
    assert [s.name for s in forward.returns] == ["log_pi", "mu", "log_sigma"]
    assert forward.returns[0].shape == ("B", "K")
    assert part.checks["nll"].threshold == 0.40 and part.checks["nll"].direction == "max"  # a gap to the exact NLL
    assert part.max_points == sum(c.points for c in part.checks.values()) == 25
    assert {c.tier for c in part.checks.values()} == {"E", "C", "A"}
    assert {bug for bug, _, _ in part.known_wrong()} == {
        "unnormalised_weights", "single_gaussian", "missing_normaliser", "arm_one_elbow", "arm_single_gaussian",
        "em_log_variance", "arm_analytic_ik", "dropout_train_mode", "em_old_mean", "logsumexp_missing",
        "sigma_as_log_sigma"}


def test_autoregressive_manifest_declares_the_digits_model_and_the_cache():
    part = load_part("autoregressive")
    assert part.entry_points["fit"].stores_object == "model"
    assert part.entry_points["fit_digits"].stores_object == "digits_model"
    assert part.entry_points["model.logits"].args[0].shape == ("B", "L")      # prefixes, for the uncached timing
    assert part.entry_points["model.logits"].returns[0].shape == ("B", "L", "16")
    assert part.entry_points["digits_model.logits"].returns[0].shape == ("B", "64")
    assert {c.tier for c in part.checks.values()} == {"E", "C", "A"}
    assert part.entry_points["model.generate"].args[0].shape == ("B", "64", "16")   # the grader's Gumbel noise
    assert part.checks["kv_speed"].tier == "A" and part.checks["kv_speed"].direction == "max"   # in full passes
    assert part.checks["digits_nll"].threshold == 2.0        # an excess over the run's secret source, not an NLL
    assert {n for n, c in part.checks.items() if n.startswith("digits_")} == {
        "digits_fit_budget", "digits_causal", "digits_nll", "digits_beats_independent", "digits_samples",
        "digits_sample_seed"}
    wrong = {bug: catches for bug, _, catches in part.known_wrong()}
    assert "digits_causal" in wrong["made_mask_leaks"] and "digits_nll" in wrong["digits_logits_are_probs"]
    assert wrong["kv_sample_uncached"] == wrong["kv_slow_prefixes"] == ["kv_speed"]


def test_content_hash_changes_with_any_file(tmp_path):
    copy = tmp_path / "mdn"
    shutil.copytree(MDN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = content_hash(copy)
    (copy / "oral.toml").write_text((copy / "oral.toml").read_text() + "\n# edited\n")
    assert content_hash(copy) != before


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.replace('title = "Mixture density networks versus regression"\n', ""), "missing 'title'"),
    (lambda s: s.replace('direction = "max"', 'direction = "up"', 1), "direction must be"),
    (lambda s: s.replace('returns = "object model"', 'returns = "json"'), "calls a method on an object"),
    (lambda s: s.replace('slug = "mdn"', 'slug = "other"'), "must equal the folder name"),
    (lambda s: s + "\n[checks.broken\n", "part.toml"),
])
def test_malformed_manifests_are_rejected_with_the_reason(tmp_path, edit, message):
    copy = tmp_path / "mdn"
    shutil.copytree(MDN, copy, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = copy / "part.toml"
    manifest.write_text(edit(manifest.read_text()))
    with pytest.raises(PartError, match=message.replace("(", r"\(")):
        load_part_dir(copy)


def test_import_assignments_is_idempotent_and_versions_by_content(db, settings, tmp_path):
    root = tmp_path / "assignments"
    shutil.copytree(MDN, root / "lab1" / "mdn", ignore=shutil.ignore_patterns("__pycache__"))
    settings.ASSIGNMENTS_DIR = root
    call_command("import_assignments")
    call_command("import_assignments")
    assert PartVersion.objects.count() == 1
    first = Part.objects.get(slug="mdn").current_version
    readme = root / "lab1" / "mdn" / "handout" / "README.md"
    readme.write_text(readme.read_text() + "\nErratum.\n")
    call_command("import_assignments")
    part = Part.objects.get(slug="mdn")
    assert PartVersion.objects.count() == 2
    assert part.current_version != first
    assert part.current_version.content_hash == content_hash(root / "lab1" / "mdn")


@pytest.mark.parametrize("part", all_parts(), ids=lambda p: p.slug)
def test_every_known_wrong_builds_from_the_reference_and_differs_from_it(part, tmp_path):
    """Known-wrongs are patches against solution/: a reference edit that breaks one shows up here, in
    seconds, instead of in calibration."""
    wrongs = part.known_wrong()
    assert wrongs, f"{part.slug} has no known-wrong submission"
    module = part.solution_dir / part.module
    for bug, folder, _ in wrongs:
        built = build_known_wrong(folder, tmp_path / bug)
        def differs(path, built=built):
            reference = part.solution_dir / path.relative_to(built)
            return not reference.exists() or path.read_bytes() != reference.read_bytes()

        assert any(differs(p) for p in built.rglob("*") if p.is_file()), f"{bug} is identical to the reference"
        assert (built / module.name).exists()


def test_a_patch_that_no_longer_applies_says_which_to_regenerate(tmp_path):
    part_copy = tmp_path / "mdn"
    shutil.copytree(MDN, part_copy, ignore=shutil.ignore_patterns("__pycache__"))
    solution = part_copy / "solution" / "mdn.py"
    solution.write_text(solution.read_text().replace("log_sigma.clamp(-7.0, 3.0)", "log_sigma.clamp(-5.0, 2.0)"))
    with pytest.raises(PartError, match="unnormalised_weights/bug.patch no longer applies"):
        build_known_wrong(part_copy / "wrong" / "unnormalised_weights", tmp_path / "built")
