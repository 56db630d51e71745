"""Export the champion for Triton (``serving=triton``): its ONNX graph and its identity.

``python -m <package>.serving.triton_export --out build/triton`` runs in the project's
environment (MLflow, scikit-learn, skl2onnx): :func:`.fetch_model.export_onnx` resolves
the ``champion`` alias, converts the model to ONNX, checks ONNX Runtime against sklearn
on sample rows and writes ``model.onnx`` and ``model.json`` (name, version, run id) under
``--out``, which :mod:`.triton_server` serves from ``.venv-triton``. A champion that does
not convert to ONNX (e.g. text features) is refused in one line with the reason: Triton's
environment has ONNX Runtime, not scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from ..config import MODEL_ALIAS
from .fetch_model import NotConvertible, export_main, export_onnx

SERVER = "serving=triton"
__all__ = ["NotConvertible", "export", "main"]


def export(
    tracking_uri: str, model_name: str, out: Path, alias: str = MODEL_ALIAS
) -> dict[str, str]:
    """Write ``alias`` of ``model_name`` as ``out/model.onnx`` + ``out/model.json``."""
    return export_onnx(tracking_uri, model_name, out, SERVER, alias)


def main(argv: list[str] | None = None) -> None:
    """Export the champion of the configured model; print what was written as one JSON line."""
    export_main(argv, Path("build/triton"), __doc__, export)


if __name__ == "__main__":
    main()
