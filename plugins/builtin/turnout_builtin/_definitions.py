"""The declarative definitions a built-in component runs: from files, and stored through the API.

Every version of a definition is its own workflow, ``name@version``, so an
instance replays the document it started with even after a newer version is
stored. Starting by the bare ``name`` starts the latest version: files first
(in the order the ``definitions`` patterns find them), then stored versions in
the order they were stored. A definition without a version gets one from its
content, so an edited file is a new version too.

A definition with a schedule (or a 0.8 event start state) has a scheduler
instance, ``<name>__schedule``, which starts its runs through this component.
The latest version of each name decides it: once the engine runs, and after
each ``put``, it is started, or taken over from an older version (whose
scheduler is terminated), or stopped when the latest version has no schedule.
"""

from __future__ import annotations

import glob
import hashlib
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout import (
    AsyncWorkflowClient,
    ComponentError,
    DefinitionExists,
    DefinitionNotFound,
    InvalidArgument,
    WorkflowDefinition,
    Workflows,
)

from ._store import Store, StoredDefinition

if TYPE_CHECKING:
    from turnout.declarative import Definition, Settings

VERSION_SEPARATOR = "@"
SCHEDULER_SUFFIX = ":schedule"
"""``turnout.declarative.SCHEDULER_SUFFIX``, known here without importing the declarative layer."""


#: Per registry: the starter of its declarative workflows, and the component that starts their instances.
_STARTERS: weakref.WeakKeyDictionary[Workflows, Any] = weakref.WeakKeyDictionary()
_OWNERS: weakref.WeakKeyDictionary[Workflows, Definitions] = weakref.WeakKeyDictionary()


def _declarative() -> Any:
    try:
        import turnout.declarative as declarative
    except ImportError as exc:  # jq (or httpx) missing
        raise ComponentError(
            f"declarative workflows need the 'declarative' extra ({exc}): pip install 'turnout[declarative]'"
        ) from None
    return declarative


def version_of(definition: Definition, text: str) -> str:
    """The definition's own version, or one derived from its text."""
    if definition.version:
        return str(definition.version)
    return f"sha-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def workflow_name_of(name: str, version: str) -> str:
    """The workflow that runs one version: ``name@version``."""
    return f"{name}{VERSION_SEPARATOR}{version}"


class Definitions:
    """Loads, stores and registers one component's definitions into its Workflows registry."""

    def __init__(
        self,
        workflows: Workflows,
        store: Store,
        *,
        patterns: list[str],
        base_dir: Path,
        settings: Settings | None,
        component: str,
        client: AsyncWorkflowClient | None = None,
    ) -> None:
        self.workflows = workflows
        self.store = store
        self.patterns = patterns
        self.base_dir = base_dir
        self.settings = settings
        self.component = component
        self.client = client  # starts the instances definitions start: runs, schedulers
        self._latest: dict[str, str] = {}  # name -> the workflow name of its latest version
        self._loaded: dict[str, Definition] = {}  # workflow name -> its definition
        self._files: list[WorkflowDefinition] = []

    async def resolve(self, workflow_name: str) -> str:
        """The workflow to start for ``workflow_name``: the latest version when it names a definition.

        The store is asked each time, so a version stored through another worker
        starts here too. A workflow registered in code keeps its name (and costs no read).
        """
        if self.workflows.has_workflow(workflow_name):
            return workflow_name
        stored = await self.store.get_definition(workflow_name, None)
        if stored is not None:
            return self._register_stored(stored).workflow_name
        return self._latest.get(workflow_name, workflow_name)

    async def register_version(self, workflow_name: str) -> None:
        """Register ``name@version`` from the store if it is stored there (by another worker, say).

        The engine asks before it turns an instance whose workflow is not
        registered here, so an instance never fails for a definition that this
        worker has not seen yet.
        """
        workflow_name = workflow_name.removesuffix(SCHEDULER_SUFFIX)  # a scheduler comes with its definition
        name, separator, version = workflow_name.rpartition(VERSION_SEPARATOR)
        if not separator or not name:
            return
        stored = await self.store.get_definition(name, version)
        if stored is not None:
            self._register_stored(stored)

    async def load(self) -> None:
        """Register the definitions found by the patterns, then every stored version.

        A bad file stops the component from starting, with the file and the path
        inside it named: nothing starts half-configured.
        """
        if self.patterns:
            declarative = _declarative()
            for path in self._paths():
                try:
                    text = path.read_text(encoding="utf-8")
                    definition = declarative.parse_definition(text, source=str(path))
                except (InvalidArgument, OSError, UnicodeDecodeError) as exc:
                    raise ComponentError(
                        str(exc), component=self.component, field="spec.metadata.definitions"
                    ) from None
                created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                self._files.append(self._register(definition, text, created))
        for stored in await self.store.list_definitions():
            self._register_stored(stored)

    def _paths(self) -> list[Path]:
        found: list[Path] = []
        for pattern in self.patterns:
            full = pattern if Path(pattern).is_absolute() else str(self.base_dir / pattern)
            matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
            if not matches:
                raise ComponentError(
                    f"no definition file matches {pattern!r} (looked in {self.base_dir})",
                    component=self.component,
                    field="spec.metadata.definitions",
                )
            found.extend(m for m in matches if m not in found)
        return found

    def _register(self, definition: Definition, text: str, created: datetime) -> WorkflowDefinition:
        version = version_of(definition, text)
        workflow_name = workflow_name_of(definition.name, version)
        declarative = _declarative()
        starter = self._starter() if declarative.starts_instances(definition) else None
        if not self.workflows.has_workflow(workflow_name):
            declarative.register(
                self.workflows, definition, settings=self.settings, name=workflow_name, starter=starter
            )
        self._loaded.setdefault(workflow_name, definition)
        self._latest[definition.name] = workflow_name
        return WorkflowDefinition(
            name=definition.name,
            version=version,
            dialect=definition.dialect,
            workflow_name=workflow_name,
            created_at=created,
            document=text,
        )

    def _register_stored(self, stored: StoredDefinition) -> WorkflowDefinition:
        workflow_name = workflow_name_of(stored.name, stored.version)
        if self.workflows.has_workflow(workflow_name):  # registered already: no parse on every start
            self._latest[stored.name] = workflow_name
            return _public(stored, with_document=True)
        definition = _declarative().parse_definition(
            stored.document, source=f"stored definition {stored.name} {stored.version}"
        )
        return self._register(definition, stored.document, datetime.fromtimestamp(stored.created_at, UTC))

    def _starter(self) -> Any:
        """The registry's starter, bound to this component: runs and schedulers start here.

        One starter per registry (``register`` binds one), re-bound by each
        component that opens on it, so a registry used again by a new runtime
        starts instances there; two components running at once on one
        registry cannot both start instances, and the second is refused.
        """
        starter = _STARTERS.get(self.workflows)
        if starter is None:
            starter = _STARTERS[self.workflows] = _declarative().ClientStarter()
        owner = _OWNERS.get(self.workflows)
        if owner is not None and owner is not self:
            raise ComponentError(
                f"the Workflows registry is already used by component '{owner.component}', which is running: "
                "declarative workflows start instances through one component per registry; give each "
                "component its own registry",
                component=self.component,
                field="spec.metadata.definitions",
            )
        _OWNERS[self.workflows] = self
        if self.client is not None:
            starter.bind(self.client)
        return starter

    def close(self) -> None:
        """The component closes: its registry may start instances through another one from now on."""
        if _OWNERS.get(self.workflows) is self:
            del _OWNERS[self.workflows]
            _STARTERS[self.workflows].bind(None)  # and holds on to nothing of this component

    async def start_schedules(self) -> None:
        """Start, take over or stop each definition's scheduler, as its latest version says.

        Called once the engine runs: taking over terminates the older
        scheduler, which needs the engine to apply it.
        """
        for workflow_name in list(self._latest.values()):
            await self._schedule(workflow_name)

    async def _schedule(self, workflow_name: str) -> None:
        definition = self._loaded.get(workflow_name)
        if definition is None:  # registered before this component opened (a registry used again)
            name, _, version = workflow_name.rpartition(VERSION_SEPARATOR)
            stored = await self.store.get_definition(name, version)
            if stored is None:
                return
            definition = _declarative().parse_definition(
                stored.document, source=f"stored definition {stored.name} {stored.version}"
            )
            self._loaded[workflow_name] = definition
        if self.client is not None:
            await _declarative().start_schedule(self.client, definition, workflow_name=workflow_name)

    async def put(self, document: str, source: str | None) -> WorkflowDefinition:
        """Validate, store and register a new version (the same version again changes nothing).

        When it is the latest version, its schedule takes over (see :meth:`start_schedules`).
        """
        definition = _declarative().parse_definition(document, source=source or "uploaded definition")
        version = version_of(definition, document)
        for info in self._files:
            if (info.name, info.version) == (definition.name, version) and info.document != document:
                raise DefinitionExists(definition.name, version)  # a file holds this version
        stored = await self.store.put_definition(
            StoredDefinition(
                name=definition.name,
                version=version,
                dialect=definition.dialect,
                document=document,
                created_at=time.time(),
            )
        )
        registered = self._register_stored(stored)
        if self._latest.get(stored.name) == registered.workflow_name:
            await self._schedule(registered.workflow_name)
        return registered

    async def get(self, name: str, version: str | None) -> WorkflowDefinition:
        """A definition with its document; the latest version unless one is named."""
        stored = await self.store.get_definition(name, version)
        if stored is not None:
            return _public(stored, with_document=True)
        for info in reversed(self._files):
            if info.name == name and version in (None, info.version):
                return info
        raise DefinitionNotFound(name, version, self.component)

    async def list(self) -> list[WorkflowDefinition]:
        """Every version this component can start: files, then stored ones."""
        listed = [info.model_copy(update={"document": None}) for info in self._files]
        seen = {(info.name, info.version) for info in listed}
        for stored in await self.store.list_definitions():
            if (stored.name, stored.version) not in seen:
                listed.append(_public(stored, with_document=False))
        return listed


def _public(stored: StoredDefinition, *, with_document: bool) -> WorkflowDefinition:
    return WorkflowDefinition(
        name=stored.name,
        version=stored.version,
        dialect=stored.dialect,
        workflow_name=workflow_name_of(stored.name, stored.version),
        created_at=datetime.fromtimestamp(stored.created_at, UTC),
        document=stored.document if with_document else None,
    )
