"""``generate(seed, **options)``: one synthetic CISS/FIESTA case with exact truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from nvc_mri.io.sequence import SequenceGuess
from nvc_mri.io.volume import Volume, VolumeMeta
from nvc_mri.labels import Label
from nvc_mri.phantom import artifacts
from nvc_mri.phantom.anatomy import Anatomy, Region, fixed_regions
from nvc_mri.phantom.build import build_geometry
from nvc_mri.phantom.contrast import tissue_intensities
from nvc_mri.phantom.lesions import TISSUE
from nvc_mri.phantom.options import PhantomOptions
from nvc_mri.phantom.render import Grid, render
from nvc_mri.phantom.truth import PhantomTruth, lesion_truth, side_truth

PHANTOM_VERSION = "1.3"  # 1.1: displacement-mode deformities push the nerve away from the artery; 1.2: the artery then
# touches the nerve from the side it pushed from (1.1 drew a new approach direction), VA displacements included,
# and the truth gives the push's height where the artery touches (1.1: its peak, and only when the design was achieved);
# 1.3: large unlabelled regions (cerebellum, bone, ...) sampled on every other voxel are interpolated back in place
# (1.2 stretched them towards their box's first corner, surfaces up to 0.7 mm off)
COARSE = frozenset({"scalp", "skull", "intracranial", "cerebrum", "bone", "vermis", "sphenoid_sinus",
                    "temporal_right", "temporal_left", "cerebellum_right", "cerebellum_left", "mastoid_+1", "mastoid_-1"})


@dataclass
class PhantomCase:
    """A generated case: image and label volumes on one grid (RAS+ affine) and the truth."""

    image: Volume
    labels: Volume
    truth: PhantomTruth


def _tube_region(tube, tissue: str, label: int) -> Region:
    return Region(tube.name, tissue, label, tube.sdf, tube.bbox(1.0), tube=tube)


def regions_of(a: Anatomy) -> list[Region]:
    """Every region of the phantom in painting order (later covers earlier)."""
    regions = fixed_regions(a)
    lesion_regions, vs_cn8 = [], []
    for lesion in a.lesions:
        lesion_regions.append(Region(f"lesion_{lesion.type}", TISSUE[lesion.type], int(Label.LESION), lesion.sdf(a), lesion.bbox))
        if lesion.type == "arachnoid_cyst":
            shape = lesion.shape_sdf
            lesion_regions.append(Region("cyst_wall", "cyst_wall", int(Label.LESION), lambda x, f=shape: np.abs(f(x)) - 0.12,
                                         lesion.bbox))
    nerves = []
    for name, side in a.sides.items():
        cn8 = _tube_region(side.vestibulocochlear, "nerve", int(Label.VESTIBULOCOCHLEAR_NERVE))
        (vs_cn8 if any(l.absorbs_cn8 and l.side == name for l in a.lesions) else nerves).append(cn8)
        nerves.append(_tube_region(side.facial, "nerve", int(Label.FACIAL_NERVE)))
        nerves.append(_tube_region(side.trigeminal, "nerve", int(Label.BACKGROUND)))
    arteries = [_tube_region(t, "artery", int(Label.ARTERY)) for t, _ in a.arteries]
    veins = [_tube_region(t, "vein", int(Label.BACKGROUND)) for t in a.veins]
    return regions + vs_cn8 + lesion_regions + nerves + arteries + veins


def _draw_acquisition(opts: PhantomOptions, rng: np.random.Generator) -> dict:
    contrast = opts.contrast or str(rng.choice(["ciss", "fiesta"]))
    if opts.spacing_mm:
        spacing = tuple(float(s) for s in opts.spacing_mm)
    elif contrast == "random":
        inplane = float(rng.uniform(0.35, 1.0))
        spacing = (inplane, inplane, float(rng.uniform(0.4, 1.5)))
    else:
        inplane = float(rng.choice([0.39, 0.43, 0.47, 0.5, 0.55, 0.6]))
        spacing = (inplane, inplane, float(rng.choice([0.5, 0.6, 0.7, 0.8, 1.0])))
    return dict(
        contrast=contrast, spacing=spacing,
        slab=opts.slab_mm or float(rng.uniform(50, 80)),
        orientation=opts.orientation or str(rng.choice(["axial", "oblique"], p=[0.6, 0.4])),
        tilt=float(rng.uniform(10, 25) * rng.choice([-1, 1])),
        snr=opts.snr or float(rng.uniform(12, 40)),
        pose=rng.uniform(-opts.max_pose_deg, opts.max_pose_deg, 3),
        shift=rng.uniform(-3, 3, 3),
        slab_centre_z=float(rng.uniform(-2, 6)),
        blur=float(rng.uniform(0.0, 0.9)) if contrast == "random" else float(rng.uniform(0.2, 0.45)),
        bias=float(rng.uniform(0.0, 0.35)) if contrast == "random" else float(rng.uniform(0.03, 0.15)),
        gamma=float(np.exp(rng.normal(0, 0.3))) if contrast == "random" else 1.0,
        banding=bool(rng.random() < opts.banding_probability),
        motion=float(rng.uniform(0.02, 0.07)) if rng.random() < opts.motion_probability else 0.0,
    )


def _grid(acq: dict, fov: float) -> tuple[Grid, np.ndarray]:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", acq["pose"], degrees=True).as_matrix()
    pose[:3, 3] = acq["shift"]
    slab = np.eye(3)
    if acq["orientation"] == "oblique":
        slab = Rotation.from_euler("x", acq["tilt"], degrees=True).as_matrix()
    spacing = np.asarray(acq["spacing"])
    n_inplane = int(round(fov / spacing[0]))
    n_slices = int(round(acq["slab"] / spacing[2]))
    # scanner-like axes: i towards the patient's left, j posterior, k superior (as DICOM axial images)
    axes = slab @ np.diag([-1.0, -1.0, 1.0])
    affine = np.eye(4)
    affine[:3, :3] = axes * spacing
    centre = np.array([0.0, 0.0, acq["slab_centre_z"]])
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.array([n_inplane, n_inplane, n_slices]) - 1) / 2)
    shape = (n_inplane, n_inplane, n_slices)
    return Grid(shape=shape, affine=affine, to_head=np.linalg.inv(pose) @ affine), pose


def _epidermoid_texture(rng: np.random.Generator):
    waves = rng.normal(0, 1.4, (6, 3)).astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, 6).astype(np.float32)
    return lambda p: (1.0 + 0.06 * sum(np.sin(p @ w + ph) for w, ph in zip(waves, phases))).astype(np.float32)


def generate(seed: int, **options) -> PhantomCase:
    """Generate one phantom case.

    Parameters
    ----------
    seed : int
        Same seed and options give the same case, bit for bit.
    **options
        Fields of :class:`~nvc_mri.phantom.options.PhantomOptions` (contrast, spacing_mm,
        right/left conflict specs, lesion, ...).

    Returns
    -------
    PhantomCase
        ``image`` (float32, CSF about 1000) and ``labels`` (uint8: 0 background, 1 brainstem,
        2 CN VII, 3 CN VIII, 4 artery, 5 lesion) on one grid whose affine maps voxels to RAS+
        mm, and ``truth`` measured on the continuous geometry in the same RAS+ space.
    """
    opts = PhantomOptions(**options)
    rng = np.random.default_rng(seed)
    anatomy, design = build_geometry(rng, opts)
    acq = _draw_acquisition(opts, rng)
    grid, pose = _grid(acq, opts.fov_mm)
    intensity = tissue_intensities(acq["contrast"], rng)
    regions = regions_of(anatomy)
    texture = None
    for r, region in enumerate(regions, start=1):
        if region.tissue == "epidermoid":
            texture = (r, _epidermoid_texture(rng))
    image, labels = render(regions, grid, intensity, opts.supersample, COARSE, texture)
    image = artifacts.psf_blur(image, acq["blur"])
    image = artifacts.bias_field(image, rng, acq["bias"])
    if acq["banding"]:
        image = artifacts.banding(image, rng)
    if acq["motion"]:
        image = artifacts.motion_ghosts(image, rng, acq["motion"])
    image = artifacts.rician_noise(image, rng, intensity["csf"] / acq["snr"])
    if acq["gamma"] != 1.0:
        image = artifacts.gamma(image, acq["gamma"])
    image = image.astype(np.float32)

    sides = {n: side_truth(anatomy, n, pose, design[n]) for n in anatomy.sides}
    lesions = [lesion_truth(anatomy, lesion, pose) for lesion in anatomy.lesions]
    acq_record = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in acq.items()}
    truth = PhantomTruth(seed=seed, phantom_version=PHANTOM_VERSION, options=opts.model_dump(mode="json") | {"acquisition": acq_record},
                         head_to_world=pose.round(8).tolist(), sides=sides, lesions=lesions, design=design)
    name = {"ciss": "CISS", "fiesta": "FIESTA"}.get(acq["contrast"], "3D T2")
    meta = VolumeMeta(source=f"phantom:{seed}", format="phantom", modality="MR",
                      sequence=SequenceGuess(family="heavily_t2_3d", name=name, confidence=1.0, basis="phantom"))
    return PhantomCase(image=Volume(image, grid.affine, meta), labels=Volume(labels, grid.affine, meta), truth=truth)
