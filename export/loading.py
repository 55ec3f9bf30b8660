"""Load the model to export from what the user named: a ``.keras`` or legacy ``.h5`` file, a SavedModel
directory, or ``package.module:function`` / ``path/to/file.py:function`` returning a built model.

Keras safe mode stays on unless the user passes ``--unsafe``: a model whose deserialization needs Python
bytecode (a ``Lambda`` layer) is refused with ``UnsafeModelError`` before anything is written.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError, UnsafeModelError
from .metadata import sha256_file, sha256_tree

_UNSAFE_HINT = "needs unsafe deserialization; pass UNSAFE=1 (--unsafe) only if you trust the file"


@dataclass
class LoadedModel:
    """The loaded model plus the provenance recorded in metadata (``source`` block)."""

    model: object
    kind: str  # keras | h5 | saved_model | function
    ref: str
    sha256: str | None

    def source_json(self) -> dict:
        return {"kind": self.kind, "ref": self.ref, "sha256": self.sha256}


def import_custom(custom: str) -> object:
    """Import ``--custom`` (a ``.py`` path or a module name) so its registered Keras objects exist."""
    path = Path(custom)
    if custom.endswith(".py"):
        if not path.is_file():
            raise SourceError(f"custom objects module not found: {custom}")
        return _import_file(path)
    try:
        return importlib.import_module(custom)
    except ImportError as exc:
        raise SourceError(f"cannot import custom objects module {custom!r}: {exc}") from exc


def _import_file(path: Path) -> object:
    """Import a Python file as a module named after it (registered in sys.modules so pickling/lookup work)."""
    resolved = path.resolve()
    for module in list(sys.modules.values()):  # already imported (e.g. as a package module): reuse, never re-run
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == resolved:
            return module
    name = f"_export_user_{path.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SourceError(f"cannot import {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _load_function(source: str) -> LoadedModel:
    target, _, func_name = source.rpartition(":")
    if not func_name.isidentifier():
        raise SourceError(f"{source!r}: expected module:function with a Python identifier after ':'")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SourceError(f"{source!r}: file {target} not found")
        module, sha = _import_file(path), sha256_file(path)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SourceError(f"{source!r}: cannot import module {target!r}: {exc}") from exc
        file = getattr(module, "__file__", None)
        sha = sha256_file(Path(file)) if file else None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise SourceError(f"{source!r}: {target} has no function {func_name!r}")
    model = func()
    import keras

    if not isinstance(model, keras.Model):
        raise SourceError(f"{source!r} returned {type(model).__name__}, expected a built keras.Model")
    if not model.built:
        raise SourceError(f"{source!r} returned an unbuilt model: call model.build(shape) or the model once")
    return LoadedModel(model, "function", source, sha)


def _check_container(path: Path, kind: str) -> None:
    """A ``.keras`` file is a zip and an ``.h5`` file an HDF5 container: say so in one line when it is not
    (Keras reports a corrupt ``.keras`` as "File not found", h5py a bad ``.h5`` with a traceback)."""
    try:
        if kind == "keras":
            if not zipfile.is_zipfile(path):
                raise SourceError(f"cannot load {path}: not a .keras archive (a .keras model is a zip file; "
                                  "this one is truncated, corrupt or another format)")
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
            if "config.json" not in names:
                raise SourceError(f"cannot load {path}: a zip file but not a Keras model (no config.json inside)")
            return
        import h5py

        is_hdf5 = h5py.is_hdf5(str(path))  # also finds the signature after a user block (offset 512, 1024, ...)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"cannot load {path}: {exc}") from exc
    if not is_hdf5:
        raise SourceError(f"cannot load {path}: not an HDF5 file (a legacy .h5 Keras model starts with the HDF5 "
                          "signature; this one is truncated, corrupt or another format)")


def _load_keras_file(path: Path, kind: str, unsafe: bool) -> LoadedModel:
    import keras

    _check_container(path, kind)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text:
            layer = "Lambda layer" if "Lambda" in text else "model"
            raise UnsafeModelError(f"loading {path} refused: {layer} {_UNSAFE_HINT}. Keras said: {text}") from exc
        raise SourceError(f"cannot load {path}: {text}") from exc
    except TypeError as exc:  # Keras' message when a custom class is not registered
        raise SourceError(f"cannot load {path}: {exc} (is the custom layer's module passed with CUSTOM=?)") from exc
    except (OSError, KeyError) as exc:  # h5py / zip members: a damaged file that passed the signature check
        raise SourceError(f"cannot load {path}: {type(exc).__name__}: {exc}") from exc
    return LoadedModel(model, kind, str(path), sha256_file(path))


@dataclass
class SavedModelSource:
    """A SavedModel used as the model: its ``serving_default`` function (keyword inputs, dict outputs).

    ``module`` (what ``tf.saved_model.load`` returned) is tracked by the export so the variables come along.
    """

    module: object
    fn: object


def _load_saved_model(path: Path) -> LoadedModel:
    import tensorflow as tf

    try:
        module = tf.saved_model.load(str(path))
    except (ValueError, OSError, tf.errors.OpError) as exc:
        raise SourceError(f"cannot load SavedModel {path}: {type(exc).__name__}: {exc}") from exc
    if "serving_default" not in module.signatures:
        raise SourceError(f"SavedModel {path} has no serving_default signature (has {sorted(module.signatures)})")
    source = SavedModelSource(module, module.signatures["serving_default"])
    return LoadedModel(source, "saved_model", str(path), sha256_tree(path))


def load_source(source: str, *, custom: str | None = None, unsafe: bool = False) -> LoadedModel:
    """Load ``source`` (after importing ``custom``); raise ``SourceError`` with what to fix."""
    if custom:
        import_custom(custom)
    path = Path(source)
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise SourceError(f"{source}: a directory but not a SavedModel (no saved_model.pb)")
        return _load_saved_model(path)
    if path.suffix in (".keras", ".h5", ".hdf5"):
        if not path.is_file():
            raise SourceError(f"model file not found: {source}")
        return _load_keras_file(path, "keras" if path.suffix == ".keras" else "h5", unsafe)
    if ":" in source:
        return _load_function(source)
    raise SourceError(
        f"cannot interpret MODEL={source!r}: expected a .keras/.h5 file, a SavedModel directory, "
        "or module:function (package.module:function or path/to/file.py:function)"
    )
