"""Run a trained torch network through ONNX Runtime on the CPU.

The embedder and the mask segmenter are trained in torch, but torch's eager CPU kernels are slow for their
small depthwise and 3x3 convolutions. At load time each network is exported once, in memory, to an ONNX graph
(``torch.onnx.export``, batch axis left free) and handed to an ONNX Runtime session with the same thread count
as torch. The outputs agree with torch's to float32 rounding (``tests/models/test_runtime.py`` checks it), so a
bundle certified on torch cuts stays valid; ``backend="torch"`` keeps the eager path where a caller wants it
(training evaluates the network it is training).

An export takes about a second for the embedder, so each graph is kept in the cache folder
(:func:`models.files.default_cache_dir` ``/onnx``) under a hash of everything it is made of: the network's
structure and class source, its weights, the input shape, the opset and the torch version. A one-shot command
(``cupcheck verify`` on one photo) then pays only for opening the session; a cached file that ONNX Runtime
cannot read is exported again.

Measured on the 2-core CPU, one thread: the shipped embedder over the 40 inputs of a 10-coin cup (4 rotations
each) takes 496 ms in torch and 104 ms in ONNX Runtime; the segmenter's 20 windows (10 boxes, flip TTA) 100 ms
and 50 ms.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from models.files import default_cache_dir, write_bytes_atomic

if TYPE_CHECKING:  # torch is imported where a graph is made, so the CLI parser can name the backends cheaply
    import torch
    from torch import nn

_log = logging.getLogger(__name__)
Backend = Literal["onnx", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "torch")
DEFAULT_BACKEND: Backend = "onnx"
ONNX_OPSET = 17


def check_backend(backend: str) -> Backend:
    """``backend`` as a :data:`Backend`.

    Raises:
        ValueError: it is not one of :data:`BACKENDS`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown inference backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return backend


def export_onnx(module: nn.Module, example: torch.Tensor) -> bytes:
    """The ONNX graph of ``module`` (in eval mode) for inputs shaped like ``example``, any batch size.

    Args:
        module: a network whose ``forward`` takes one float32 tensor and returns one.
        example: ``(n, ...)`` an input it accepts; only its shape and dtype matter.

    Raises:
        ValueError: the network cannot be exported (an operation ONNX does not have).
    """
    import torch

    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
            torch.onnx.export(
                module,
                (example[:1],),
                buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to any binary file object
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    except Exception as err:  # the exporter raises many types for an unsupported graph
        raise ValueError(f"cannot export {type(module).__name__} to ONNX: {err}; use the torch backend") from err
    finally:
        module.train(was_training)
    return buf.getvalue()


def graph_key(module: nn.Module, example: torch.Tensor) -> str:
    """A hex digest naming ``module``'s ONNX graph for inputs shaped like ``example`` (any batch size).

    It covers the module's printed structure, the source of its class, every parameter and buffer (names,
    shapes, bytes), the per-item input shape, :data:`ONNX_OPSET` and the torch version.
    """
    import torch

    h = hashlib.sha256()
    try:
        source = inspect.getsource(type(module))
    except (OSError, TypeError):
        source = type(module).__qualname__
    for text in (repr(module), source, str(tuple(example.shape[1:])), str(ONNX_OPSET), torch.__version__):
        h.update(text.encode())
        h.update(b"\0")
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class OnnxRunner:
    """One ONNX Runtime CPU session: ``runner(x)`` maps an ``(n, ...)`` float32 array to the network's output.

    Args:
        graph: serialised ONNX model with one input ``x`` and one output ``y``.
        threads: intra-op threads (``None``: torch's current thread count, so both backends use the same).
    """

    def __init__(self, graph: bytes, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads if threads is not None else torch.get_num_threads()))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.threads = options.intra_op_num_threads
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    @classmethod
    def from_module(
        cls,
        module: nn.Module,
        example: torch.Tensor,
        threads: int | None = None,
        cache: Path | None = None,
    ) -> OnnxRunner:
        """Open a session on ``module``'s graph, exported (see :func:`export_onnx`) or read from the cache.

        Args:
            module: the network.
            example: ``(n, ...)`` an input it accepts.
            threads: intra-op threads (``None``: torch's current count).
            cache: folder of exported graphs (default ``default_cache_dir() / "onnx"``); a folder that cannot
                be written only costs the export at every load.

        Raises:
            ValueError: the network cannot be exported.
        """
        folder = default_cache_dir() / "onnx" if cache is None else cache
        file = folder / f"{type(module).__name__}-{graph_key(module, example)[:24]}.onnx"
        if file.is_file():
            try:
                return cls(file.read_bytes(), threads)
            except Exception as err:  # onnxruntime raises its own types for a corrupt graph
                _log.warning("cached ONNX graph %s is unreadable (%s): exporting again", file, err)
        graph = export_onnx(module, example)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(file, graph)
        except OSError as err:
            _log.warning("cannot cache the ONNX graph in %s: %s", folder, err)
        return cls(graph, threads)

    def __call__(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The network's output for ``x`` (float32, C-contiguous copies are made when needed)."""
        out = self._session.run(["y"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)
