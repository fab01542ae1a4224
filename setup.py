"""Maps the top-level folders tools/ and sandboxes/ to agentkit.tools and agentkit.sandboxes."""

from setuptools import find_packages, setup

_MAPPED = {"tools": "agentkit.tools", "sandboxes": "agentkit.sandboxes"}


def _packages() -> list[str]:
    found = [p for p in find_packages(include=["agentkit", "agentkit.*"])]
    for folder, name in _MAPPED.items():
        found.append(name)
        found += [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return found


setup(packages=_packages())
