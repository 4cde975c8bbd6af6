"""NB models. Every module in this package is imported here so that each
``@register``-ed model becomes known without a central list to edit."""
import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f'{__name__}.{_mod.name}')
