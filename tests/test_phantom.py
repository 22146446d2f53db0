"""The phantom's truth is proven against renderings and peers, not trusted."""

from __future__ import annotations

import json
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from nvc_mri.io import load_volume
from nvc_mri.phantom import ConflictSpec, LesionSpec, generate
from nvc_mri.phantom.anatomy import Region
from nvc_mri.phantom.build import build_geometry
from nvc_mri.phantom.options import PhantomOptions
from nvc_mri.phantom.presets import TRAIN_SEED_LIMIT, preset_cases
from nvc_mri.phantom.render import Grid, render, upsample_every_other
from nvc_mri.phantom.write import write_case
from nvc_mri.segments import nerve_segment

SMALL = dict(spacing_mm=(0.6, 0.6, 0.8), slab_mm=40.0, fov_mm=100.0)


@pytest.fixture(scope="module")
def conflict_case():
    return generate(11, **SMALL, contrast="ciss", lesion_probability=0.0,
                    right=ConflictSpec(kind="near_miss", segment="transition_zone", vessel="AICA", gap_mm=0.6),
                    left=ConflictSpec(kind="deformity", segment="attached_segment", vessel="PICA"))


def test_same_seed_same_case_bit_for_bit():
    a, b = generate(5, **SMALL), generate(5, **SMALL)
    assert np.array_equal(a.image.array, b.image.array)
    assert np.array_equal(a.labels.array, b.labels.array)
    assert a.truth.model_dump_json() == b.truth.model_dump_json()
    assert not np.array_equal(a.image.array, generate(6, **SMALL).image.array)


def test_labels_values_and_grid(conflict_case):
    labels = conflict_case.labels.array
    assert labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 4}  # no lesion in this case
    assert {1, 2, 3, 4} <= set(np.unique(labels))
    np.testing.assert_array_equal(conflict_case.labels.affine, conflict_case.image.affine)
    # contrast: CSF bright, brainstem intermediate, nerves and arteries dark
    img = conflict_case.image.array
    brainstem = np.median(img[labels == 1])
    assert np.median(img[labels == 4]) < 0.5 * brainstem
    assert np.percentile(img, 99) > 2.0 * brainstem


def _fine_gap(anatomy, nerve, artery, centre, size=8.0, step=0.1) -> float:
    """Render the nerve and the artery on a 0.1 mm grid around ``centre`` and measure their gap there."""
    n = int(size / step)
    to_head = np.eye(4)
    to_head[:3, :3] *= step
    to_head[:3, 3] = centre - size / 2
    grid = Grid(shape=(n, n, n), affine=to_head, to_head=to_head)
    regions = [Region("nerve", "nerve", 2, nerve.sdf, nerve.bbox(1), tube=nerve),
               Region("artery", "artery", 4, artery.sdf, artery.bbox(1), tube=artery)]
    _, labels = render(regions, grid, {"air": 0.0, "nerve": 1.0, "artery": 2.0}, supersample=4)
    nerve_mask, artery_mask = labels == 2, labels == 4
    if not nerve_mask.any() or not artery_mask.any():
        return np.inf
    edt = ndimage.distance_transform_edt(~artery_mask, sampling=step)
    return max(float(edt[nerve_mask].min()) - step, 0.0)


@pytest.mark.parametrize("seed", [21, 22, 23, 24])
def test_analytic_gap_matches_a_fine_rendering(seed):
    spec = ConflictSpec(kind="near_miss", segment="cisternal", vessel="AICA", gap_mm=[0.3, 0.8, 1.4, 0.0][seed - 21])
    if seed == 24:
        spec = ConflictSpec(kind="contact", segment="attached_segment", vessel="PICA")
    anatomy, design = build_geometry(np.random.default_rng(seed), PhantomOptions(right=spec, left=ConflictSpec(), lesion_probability=0))
    from nvc_mri.phantom.shapes import closest_approach

    nerve = anatomy.sides["right"].facial
    artery = next(t for t, v in anatomy.arteries if t.name == f"{spec.vessel}_right")
    dist, _, pa, pb = closest_approach(nerve, artery)
    analytic = max(dist - nerve.radius - artery.radius, 0.0)
    measured = _fine_gap(anatomy, nerve, artery, (pa + pb) / 2)
    assert abs(measured - analytic) <= 0.1, (measured, analytic)


def _side_mask(case, side: str) -> np.ndarray:
    """Voxels on one side of the head's mid-sagittal plane."""
    m = np.array(case.truth.head_to_world)
    idx = np.indices(case.labels.shape).reshape(3, -1).T
    world = idx @ case.labels.affine[:3, :3].T + case.labels.affine[:3, 3]
    head_x = (world - m[:3, 3]) @ m[:3, :3][:, 0]
    return ((head_x > 0) if side == "right" else (head_x < 0)).reshape(case.labels.shape)


@pytest.mark.parametrize("label", [2, 3])
def test_each_nerve_is_one_piece_from_brainstem_to_iac(conflict_case, label):
    labels = conflict_case.labels.array
    brainstem = ndimage.binary_dilation(labels == 1, iterations=1)
    for side in ("right", "left"):
        nerve = (labels == label) & _side_mask(conflict_case, side)
        comps, n = ndimage.label(nerve, structure=np.ones((3, 3, 3)))
        assert n == 1, f"{side} nerve {label} in {n} pieces"
        assert (nerve & brainstem).any(), "nerve does not reach the brainstem"
        extent = np.ptp(np.argwhere(nerve) * conflict_case.labels.spacing, axis=0).max()
        assert extent > 12.0  # runs across the CPA into the canal


def test_contact_segment_matches_where_the_contact_is(conflict_case):
    for side, designed in (("right", "transition_zone"), ("left", "attached_segment")):
        t = conflict_case.truth.sides[side]
        assert t.design_achieved
        assert t.segment == designed
        assert t.segment == nerve_segment(t.distance_from_root_exit_mm, t.attached_length_mm)
        # the contact point lies on the nerve surface: its distance to the root exit point is at most the arc length
        straight = np.linalg.norm(np.subtract(t.contact_point_ras_mm, t.root_exit_point_ras_mm))
        assert straight <= t.distance_from_root_exit_mm + 1.0
    right, left = conflict_case.truth.sides["right"], conflict_case.truth.sides["left"]
    assert right.severity == "none" and abs(right.min_gap_mm - 0.6) < 0.01 and right.vessel == "AICA"
    assert left.severity == "deformity" and left.min_gap_mm == 0 and left.indentation_mm >= 0.3 and left.vessel == "PICA"
    assert left.nvc and not right.nvc


def test_dicom_round_trip_and_dcm2niix(tmp_path, conflict_case):
    folder = write_case(conflict_case, tmp_path / "case", "dicom")
    vol = load_volume(folder / "dicom")
    np.testing.assert_allclose(vol.affine, conflict_case.image.affine, atol=1e-4)
    slope = (conflict_case.image.array.max() - conflict_case.image.array.min()) / 4095
    assert np.abs(vol.array - conflict_case.image.array).max() <= slope / 2 + 1e-2
    assert vol.meta.is_heavily_t2_3d and vol.meta.sequence.name == "CISS"
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["sides"]["left"]["severity"] == "deformity"
    if shutil.which("dcm2niix") is None:
        pytest.fail("dcm2niix is required (apt-get install dcm2niix)")
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "ref", "-o", str(tmp_path), str(folder / "dicom")],
                   check=True, capture_output=True)
    ref = nib.load(str(next(tmp_path.glob("ref*.nii"))))
    ours = vol.__class__(np.asarray(ref.dataobj, np.float32), ref.affine, vol.meta)
    assert np.abs(ours.as_canonical().world_corners() - vol.as_canonical().world_corners()).max() < 0.01


def test_nifti_case_files(tmp_path):
    case = generate(3, **SMALL, lesion=LesionSpec(type="vestibular_schwannoma", koos=2, side="left"))
    folder = write_case(case, tmp_path / "c", "nifti")
    assert sorted(p.name for p in folder.iterdir()) == ["image.nii.gz", "labels.nii.gz", "truth.json"]
    labels = nib.load(str(folder / "labels.nii.gz"))
    assert 5 in np.unique(np.asarray(labels.dataobj))
    lesion = case.truth.lesions[0]
    assert lesion.koos_grade == 2 and lesion.side == "left" and lesion.cpa_extension and not lesion.contacts_brainstem
    voxel_volume = float(np.prod(case.labels.spacing)) * int((case.labels.array == 5).sum())
    assert abs(voxel_volume - lesion.volume_mm3) / lesion.volume_mm3 < 0.15


@pytest.mark.parametrize("koos", [1, 3, 4])
def test_koos_grades_are_built_as_stated(koos):
    anatomy, _ = build_geometry(np.random.default_rng(40 + koos), PhantomOptions(
        lesion=LesionSpec(type="vestibular_schwannoma", koos=koos, side="right"), right=ConflictSpec(), left=ConflictSpec()))
    from nvc_mri.phantom.truth import lesion_truth

    t = lesion_truth(anatomy, anatomy.lesions[0], np.eye(4))
    assert t.koos_grade == koos and t.intracanalicular
    assert t.cpa_extension == (koos > 1)
    assert t.contacts_brainstem == (koos >= 3)
    assert t.compresses_brainstem == (koos == 4)


def test_lesion_type_weights_choose_the_type_and_leave_the_seed_stream_alone():
    from nvc_mri.phantom.build import random_lesion
    from nvc_mri.phantom.options import DEFAULT_LESION_TYPE_WEIGHTS

    only_cysts = [random_lesion(np.random.default_rng(s), {"arachnoid_cyst": 1.0}).type for s in range(20)]
    assert set(only_cysts) == {"arachnoid_cyst"}
    default = [random_lesion(np.random.default_rng(s)).type for s in range(200)]
    assert set(default) == {"vestibular_schwannoma", "meningioma", "epidermoid", "arachnoid_cyst"}
    assert default.count("vestibular_schwannoma") > 80  # about 0.55 of 200
    for seed in range(5):  # the same draws whatever the weights, so the rest of a case does not move
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        random_lesion(a, DEFAULT_LESION_TYPE_WEIGHTS), random_lesion(b, {"epidermoid": 1.0})
        assert a.random() == b.random()
    with pytest.raises(ValueError, match="lesion_type_weights"):
        PhantomOptions(lesion_type_weights={"epidermoid": 0.0})


def test_eval_preset_is_fixed_balanced_and_covers_everything():
    cases = preset_cases("eval")
    assert len(cases) >= 40 and cases == preset_cases("eval")
    assert min(seed for seed, _ in cases) >= TRAIN_SEED_LIMIT
    specs = [spec[side] for _, spec in cases for side in ("right", "left") if side in spec]
    assert {s.kind for s in specs} == {"none", "near_miss", "contact", "deformity"}
    assert {s.segment for s in specs if s.kind != "none"} == {"root_exit_point", "attached_segment", "root_detachment_point",
                                                             "transition_zone", "cisternal"}
    assert {s.vessel for s in specs if s.kind != "none"} == {"AICA", "PICA", "VA"}
    lesions = [spec["lesion"] for _, spec in cases if spec.get("lesion")]
    assert {l.type for l in lesions} == {"vestibular_schwannoma", "meningioma", "epidermoid", "arachnoid_cyst"}
    assert {l.koos for l in lesions if l.koos} == {1, 2, 3, 4}
    none_share = sum(s.kind == "none" for s in specs) / len(specs)
    assert 0.35 <= none_share <= 0.75


def test_measure_presets_take_another_first_seed_for_a_further_set_of_the_same_designs():
    development, further = preset_cases("measure", n=30), preset_cases("measure", n=30, seed=3_300_000)
    assert [spec for _, spec in further] == [spec for _, spec in development]
    assert [seed for seed, _ in further] == list(range(3_300_000, 3_300_030))
    assert {seed for seed, _ in development}.isdisjoint(seed for seed, _ in preset_cases("measure_holdout"))


def test_domain_randomised_mode_changes_contrast_not_anatomy():
    a = generate(9, **SMALL, contrast="random")
    b = generate(9, **SMALL, contrast="ciss")
    assert a.truth.sides["right"].min_gap_mm == b.truth.sides["right"].min_gap_mm
    ratio = lambda c: np.median(c.image.array[c.labels.array == 1]) / np.percentile(c.image.array, 99)  # noqa: E731
    assert abs(ratio(a) - ratio(b)) > 0.02


def test_two_vessels_near_one_nerve():
    from nvc_mri.phantom.truth import side_truth

    spec = ConflictSpec(kind="contact", segment="attached_segment", vessel="AICA", second_vessel=True)
    for seed in range(60, 66):
        anatomy, design = build_geometry(np.random.default_rng(seed), PhantomOptions(right=spec, left=ConflictSpec(), lesion_probability=0))
        if design["right"]["achieved"]:
            break
    assert design["right"]["achieved"], "no seed built the two-vessel design"
    truth = side_truth(anatomy, "right", np.eye(4), design["right"])
    first, second = truth.arteries[:2]
    assert (first.vessel, first.gap_mm, first.segment) == ("AICA", 0.0, "attached_segment")
    assert second.vessel == "PICA" and second.segment == "cisternal"
    assert abs(second.gap_mm - design["right"]["second_vessel"]["clearance"]) < 0.05
    assert truth.vessel == "AICA" and truth.severity == "contact"


def test_phantom_cli_writes_cases(tmp_path):
    from typer.testing import CliRunner

    from nvc_mri.cli import app

    result = CliRunner().invoke(app, ["phantom", str(tmp_path / "out"), "--n", "1", "--seed", "4"])
    assert result.exit_code == 0, result.output
    case = tmp_path / "out" / "case_0000004"
    assert sorted(p.name for p in case.iterdir()) == ["image.nii.gz", "labels.nii.gz", "truth.json"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left behind
    bad = CliRunner().invoke(app, ["phantom", str(tmp_path / "x"), "--format", "png"])
    assert bad.exit_code != 0 and "format must be nifti or dicom" in bad.output


@pytest.mark.parametrize("vessel", ["AICA", "VA"])
def test_displacing_artery_touches_the_nerve_from_the_side_it_pushed_from(monkeypatch, vessel):
    """A displacement-type deformity: the nerve is pushed away from ``u`` and the artery then lies on the ``u``
    side of the displaced nerve, touching it where the push is; the truth gives the push's height there."""
    import nvc_mri.phantom.build as build
    from nvc_mri.phantom.shapes import closest_approach

    pushes = []
    original = build.displace_nerve

    def record(nerve, a, s_star, u, depth, width):
        pushes.append(u)
        return original(nerve, a, s_star, u, depth, width)

    monkeypatch.setattr(build, "displace_nerve", record)
    spec = ConflictSpec(kind="deformity", segment="cisternal", vessel=vessel, mode="displace", depth_mm=1.2)
    for seed in range(70, 76):
        pushes.clear()
        anatomy, design = build_geometry(np.random.default_rng(seed), PhantomOptions(right=spec, left=ConflictSpec(), lesion_probability=0))
        if design["right"]["achieved"]:
            break
    assert design["right"]["achieved"], "no seed built the displacement design"
    nerve = anatomy.sides["right"].facial
    artery = next(t for t, v in anatomy.arteries if v == vessel and t.name.endswith("right"))
    _, _, on_nerve, on_artery = closest_approach(nerve, artery)
    towards_artery = (on_artery - on_nerve) / np.linalg.norm(on_artery - on_nerve)
    assert towards_artery @ pushes[-1] > 0.9
    from nvc_mri.phantom.truth import side_truth

    truth = side_truth(anatomy, "right", np.eye(4), design["right"])
    assert truth.severity == "deformity" and 0.8 * 1.2 <= truth.displacement_mm <= 1.2


@pytest.mark.parametrize("shape", [(8, 9, 10), (11, 8, 13)])
def test_every_other_voxel_upsampling_is_exact_on_a_linear_field(shape):
    full = np.add.outer(np.add.outer(0.3 * np.arange(shape[0]), -1.1 * np.arange(shape[1])), 0.7 * np.arange(shape[2]))
    up = upsample_every_other(full[::2, ::2, ::2], shape)
    assert up.shape == shape
    np.testing.assert_allclose(up, full, atol=1e-5)


def test_coarse_region_surface_stays_where_its_distance_function_puts_it():
    # A large unlabelled-style region is evaluated on every other voxel; its surface must not be
    # stretched towards its box's first corner (phantom 1.2 put it up to a voxel off).
    centre, radius = np.array([3.1, -2.4, 1.7]), 18.0
    ball = Region("ball", "cerebellum", 1, lambda p: np.linalg.norm(p - centre, axis=1) - radius,
                  (centre - radius, centre + radius))
    affine = np.diag([0.5, 0.5, 0.5, 1.0])
    affine[:3, 3] = -25.0
    grid = Grid(shape=(100, 100, 100), affine=affine, to_head=affine)
    _, labels = render([ball], grid, {"air": 0.0, "cerebellum": 500.0}, coarse_names=frozenset({"ball"}))
    inside = np.argwhere(labels == 1)
    centroid = inside.mean(0) * 0.5 - 25.0
    np.testing.assert_allclose(centroid, centre, atol=0.03)
    assert abs(len(inside) * 0.125 / (4 / 3 * np.pi * radius**3) - 1) < 0.01
