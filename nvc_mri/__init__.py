"""nvc-mri: neurovascular conflict analysis at the facial nerve root exit zone on CISS/FIESTA MRI.

Coordinates that users see are RAS+ millimetres unless a name says otherwise.
"""

__version__ = "0.1.0"

from nvc_mri.errors import InputError
from nvc_mri.io import Volume, load_volume

__all__ = ["InputError", "Volume", "load_volume", "__version__"]
