"""The plugin manager: built-in plugins, the ``hrdd`` entry-point group and a plugins directory."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pluggy

from hrdd import hookspecs

# Built-in behaviour is registered exactly like third-party plugins (datasette's pattern).
DEFAULT_PLUGINS = (
    "hrdd_plugins.step1_capabilities",
    "hrdd_plugins.step2_end_user",
    "hrdd_plugins.step3_country_laws",
    "hrdd_plugins.step4_stakeholders",
    "hrdd_plugins.step6_safeguards",
    "hrdd_plugins.information_gaps",
    "hrdd_plugins.reference_data",
    "hrdd_plugins.checklist",
    "hrdd_plugins.adapter_generic",
    "hrdd_plugins.adapter_salesforce",
    "hrdd_plugins.adapter_hubspot",
    "hrdd_plugins.adapter_dynamics",
    "hrdd_plugins.adapter_sap",
    "hrdd_plugins.adapter_odoo",
    "hrdd_plugins.adapter_runtime",
    "hrdd_plugins.order_gate",
    "hrdd_plugins.workspace",
    "hrdd_plugins.cases",
    "hrdd_plugins.grievances",
    "hrdd_plugins.transparency",
    "hrdd_plugins.audit_trail",
    "hrdd_plugins.rider",
    "hrdd_plugins.step4_restricted_parties",
)


def _load_directory(pm: pluggy.PluginManager, directory: Path) -> None:
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"hrdd_dir_plugin_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        pm.register(module, name=path.stem)


def make_plugin_manager(plugins_dir: str | os.PathLike | None = None, entry_points: bool = True,
                        extra: tuple = ()) -> pluggy.PluginManager:
    """Build a plugin manager with built-ins, entry points, an optional directory and extra objects."""
    pm = pluggy.PluginManager("hrdd")
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        pm.register(module, name=module_name.rsplit(".", 1)[-1])
    if entry_points and not os.environ.get("HRDD_NO_ENTRY_POINTS"):
        pm.load_setuptools_entrypoints("hrdd")
    directory = plugins_dir or os.environ.get("HRDD_PLUGINS_DIR")
    if directory:
        _load_directory(pm, Path(directory))
    for obj in extra:
        pm.register(obj)
    pm.check_pending()
    return pm


def plugin_info(pm: pluggy.PluginManager) -> list[dict]:
    """Describe every registered plugin and the hooks it implements (for /v1/plugins)."""
    rows = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        module = getattr(plugin, "__name__", type(plugin).__module__)
        rows.append({"name": name, "module": module, "hooks": hooks,
                     "builtin": module.startswith("hrdd_plugins.")})
    return sorted(rows, key=lambda r: r["name"])
