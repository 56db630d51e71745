"""Export the champion for TorchServe (``serving=torchserve``): ONNX graph, identity, entry point.

``python -m <package>.serving.torchserve_export --out build/torchserve`` runs in the
project's environment (MLflow, scikit-learn, skl2onnx): :func:`.fetch_model.export_onnx`
resolves the ``champion`` alias, converts the model to ONNX, checks ONNX Runtime against
sklearn on sample rows and writes ``model.onnx`` and ``model.json`` (name, version, run id)
under ``--out``; this adds ``handler.py``, the model archive's entry point, which imports
:func:`.torchserve_handler.handle` from this package. :mod:`.torchserve_server` archives
the three files (``torch-model-archiver``) and serves them from ``.venv-torchserve``. A
champion that does not convert to ONNX (e.g. text features) is refused in one line with
the reason: TorchServe's environment has ONNX Runtime, not scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from ..config import MODEL_ALIAS
from .fetch_model import NotConvertible, export_main, export_onnx
from .torchserve_handler import ENTRY_POINT

SERVER = "serving=torchserve"
__all__ = ["NotConvertible", "export", "main"]


def entry_point(name: str, version: str) -> str:
    """The archive's ``handler.py``: TorchServe imports it; it imports the package's handler."""
    handler = f"{__package__}.torchserve_handler"
    return (
        f'"""TorchServe entry point of {name} v{version}: {handler}.handle (PYTHONPATH=src)."""\n'
        f'\nfrom {handler} import handle\n\n__all__ = ["handle"]\n'
    )


def export(
    tracking_uri: str, model_name: str, out: Path, alias: str = MODEL_ALIAS
) -> dict[str, str]:
    """Write ``model.onnx``, ``model.json`` and ``handler.py`` of ``alias`` under ``out``."""
    written = export_onnx(tracking_uri, model_name, out, SERVER, alias)
    (out / ENTRY_POINT).write_text(entry_point(model_name, written["version"]), encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    """Export the champion of the configured model; print what was written as one JSON line."""
    export_main(argv, Path("build/torchserve"), __doc__, export)


if __name__ == "__main__":
    main()
