"""rsa-bridge: representational similarity analysis between deep networks and primate visual cortex.

The core works on numpy arrays and xarray objects only; see :mod:`extractors` for the hook layer and
:mod:`rsa_bridge.pipeline` for the end-to-end ``compare`` job.
"""
from rsa_bridge.align import align_rdms
from rsa_bridge.compare import METHODS, compare_rdms, compare_vectors
from rsa_bridge.datasets import SHIPPED, list_datasets, load_dataset, save_dataset, validate_rdm_dataset
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.model_rdms import read_model_rdms
from rsa_bridge.progress import set_progress
from rsa_bridge.provenance import package_version
from rsa_bridge.rdm import METRICS, compute_rdm, upper_triangle

__version__ = package_version()

__all__ = [
    "METHODS", "METRICS", "SHIPPED", "RSABridgeError", "align_rdms", "compare_rdms", "compare_vectors",
    "compute_rdm", "list_datasets", "load_dataset", "read_model_rdms", "save_dataset", "set_progress", "upper_triangle",
    "validate_rdm_dataset", "__version__",
]
