"""Find the ``turnout.Workflows`` object that ``--workflows MODULE:OBJ`` names.

``MODULE`` is a dotted module path, found from the current folder first (as
uvicorn's ``module:app``), or a ``.py`` file path; ``OBJ`` is an attribute
path in it (``wf`` or ``registry.wf``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from .._errors import InvalidArgument
from .._workflows import Workflows

EXPECTED = "MODULE:OBJ naming a turnout.Workflows object, e.g. 'order_workflow:wf' or 'app/flows.py:wf'"


def _import_file(path: Path) -> ModuleType:
    name = path.stem
    loaded = sys.modules.get(name)
    loaded_from = getattr(loaded, "__file__", None)
    if loaded is not None and loaded_from and Path(loaded_from).resolve() == path:
        return loaded  # the same file, already imported (under its own name): one registry, not two
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgument("--workflows", str(path), f"a Python file ({EXPECTED})")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, so that pydantic models in it resolve their annotations.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_workflows(reference: str) -> Workflows:
    """Import ``MODULE:OBJ`` and return the Workflows object; a clear InvalidArgument otherwise."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidArgument("--workflows", reference, EXPECTED)
    try:
        if module_name.endswith(".py") or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise InvalidArgument("--workflows", reference, f"an existing file ({EXPECTED})")
            module = _import_file(path.resolve())
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except InvalidArgument:
        raise
    except ImportError as exc:
        raise InvalidArgument(
            "--workflows", reference, f"an importable module ({type(exc).__name__}: {exc}); {EXPECTED}"
        ) from exc
    except Exception as exc:  # the user's module raised while it was imported
        raise InvalidArgument(
            "--workflows", reference, f"a module that imports cleanly (it raised {type(exc).__name__}: {exc})"
        ) from exc
    found: object = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise InvalidArgument(
                "--workflows", reference, f"a name defined in {module_name} (no attribute '{part}')"
            )
        found = getattr(found, part)
    if not isinstance(found, Workflows):
        raise InvalidArgument(
            "--workflows", reference, f"a turnout.Workflows object (found {type(found).__name__})"
        )
    return found
