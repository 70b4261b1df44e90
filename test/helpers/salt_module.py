"""
Runs the saltmasq execution module the way a minion does: loaded by Salt's own loader
(``salt.loader.minion_mods``), its settings given as minion configuration (what ``config.get``
reads first), then evaluates one Python expression and prints its value as JSON. An exception
the module raises is printed as ``{"error": <class>, "message": <text>}``.

Usage: python salt_module.py <module dir> <settings JSON> <expression>

The expression sees ``saltmasq`` (the loaded module: its functions go through the loader, so
``__salt__`` and ``__context__`` are Salt's), ``mods`` (the loader) and ``calls()`` (the
service.reload and service.restart calls made, which are recorded instead of touching this
machine's services).
"""
import json
import sys
import tempfile

import salt.config
import salt.loader


def main():
    module_dir, settings_json, expression = sys.argv[1:4]
    root = tempfile.mkdtemp(prefix="saltmasq-module-")
    opts = salt.config.minion_config(None)
    opts.update(
        root_dir=root,
        cachedir=root + "/cache",
        pki_dir=root + "/pki",
        file_client="local",
        module_dirs=[module_dir],
        grains={},
        pillar={},
    )
    # ``saltmasq:dnsmasq:<name>`` keys become the nested minion configuration config.get reads.
    settings = json.loads(settings_json)
    opts["saltmasq"] = {"dnsmasq": {key.split(":")[-1]: value for key, value in settings.items()}}
    mods = salt.loader.minion_mods(opts)
    if "saltmasq.publish" not in mods:
        raise SystemExit("the saltmasq module did not load: " + str(mods.missing_fun_string("saltmasq.publish")))
    service_calls = []
    mods["service.reload"] = lambda name: service_calls.append("reload " + name) or True
    mods["service.restart"] = lambda name: service_calls.append("restart " + name) or True
    module = sys.modules["salt.loaded.ext.module.saltmasq"]

    class Calls:
        """The module's functions called through the loader; its globals set on the module itself."""

        def __getattr__(self, name):
            key = "saltmasq." + name
            return mods[key] if key in mods else getattr(module, name)

        def __setattr__(self, name, value):
            setattr(module, name, value)

    scope = {"saltmasq": Calls(), "mods": mods, "calls": lambda: list(service_calls), "json": json}
    try:
        value = eval(expression, scope)  # pylint: disable=eval-used
    except Exception as exc:  # pylint: disable=broad-except
        value = {"error": type(exc).__name__, "message": str(exc)}
    print(json.dumps(value))


if __name__ == "__main__":
    main()
