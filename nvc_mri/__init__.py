"""nvc-mri: neurovascular conflict analysis at the facial nerve root exit zone on CISS/FIESTA MRI.

Coordinates that users see are RAS+ millimetres unless a name says otherwise.

>>> import nvc_mri
>>> result = nvc_mri.analyze("study_folder/")          # doctest: +SKIP
>>> result.report.sides["left"].nvc.min_gap_mm         # doctest: +SKIP
"""

__version__ = "0.1.0"

from nvc_mri.errors import InputError
from nvc_mri.io import Volume, load_volume

__all__ = ["InputError", "Volume", "analyze", "load_volume", "__version__"]


def analyze(source, *, affine=None, device: str = "auto", weights=None, force: bool = False, series=None):
    """Analyse one study: segment, measure both facial nerves and any CPA lesion, build the report.

    Parameters
    ----------
    source : str, Path, nibabel image, SimpleITK.Image or ndarray
        A DICOM file, folder or zip; a NIfTI, NRRD, MetaImage or MGH file; or an image in memory.
    affine : ndarray (4, 4), optional
        Voxel index -> RAS+ mm, required when ``source`` is a NumPy array.
    device : {'auto', 'cpu', 'cuda'}
    weights : path, optional
        Fine-tuned weights (safetensors) instead of the shipped ones.
    force : bool
        Analyse an image that is not heavily T2-weighted (the report says it is unreliable).
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber when a folder holds several series.

    Returns
    -------
    nvc_mri.analysis.Analysis
        ``.report`` (validated report), ``.labels`` (nibabel label image on the input grid),
        ``.findings``, ``.plot(side=...)``, ``.to_dataframe()``. Write files with
        :func:`nvc_mri.report.write_outputs`.
    """
    from nvc_mri.analysis import run_analysis
    from nvc_mri.segment.model import load_networks

    return run_analysis(source, affine=affine, series=series, device=device, networks=load_networks(weights), force=force)
