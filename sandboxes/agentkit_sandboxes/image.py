"""Offline sandbox images: a Dockerfile-style recipe built with mmdebstrap + ``docker import``.

No registry is needed: Debian packages come from a Debian mirror (unpacked by ``mmdebstrap
--variant=extract``), Python packages from PyPI as wheels (installed by the host's pip into the
image's ``/usr/local/lib/python3.X/dist-packages``), and the result is imported as a Docker image
labelled with the recipe's hash, so an unchanged recipe is never built twice.

Recipe lines (``#`` starts a comment)::

    FROM bookworm [MIRROR]      # Debian suite, optional mirror URL
    APT python3 git make        # Debian packages (several lines add up)
    PIP requests==2.32.3        # wheels from PyPI
    ENV KEY=VALUE
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .config import DEFAULT_IMAGE

RECIPE_LABEL = "agentkit.recipe"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_PYTHON_OF_SUITE = {"bookworm": "3.11", "trixie": "3.13"}

DEFAULT_RECIPE = """\
# agentkit base sandbox: Debian's python3 with pytest and common build tools
FROM bookworm
APT python3 python3-pytest python3-pip python3-venv busybox-static
APT git make patch ca-certificates
ENV PYTHONDONTWRITEBYTECODE=1
"""


class RecipeError(ValueError):
    """A recipe line could not be understood."""


class Recipe(BaseModel):
    """A parsed recipe."""

    model_config = ConfigDict(frozen=True)

    suite: str = "bookworm"
    mirror: str = DEFAULT_MIRROR
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Recipe:
        suite, mirror = "bookworm", DEFAULT_MIRROR
        apt: list[str] = []
        pip: list[str] = []
        env: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            keyword, _, rest = line.partition(" ")
            args = shlex.split(rest)
            keyword = keyword.upper()
            if keyword == "FROM" and 1 <= len(args) <= 2:
                suite = args[0]
                mirror = args[1] if len(args) == 2 else mirror
            elif keyword == "APT" and args:
                apt += args
            elif keyword == "PIP" and args:
                pip += args
            elif keyword == "ENV" and args and all("=" in a for a in args):
                for assignment in args:
                    key, _, value = assignment.partition("=")
                    env[key] = value
            else:
                raise RecipeError(f"line {number}: cannot understand {raw.strip()!r}")
        if "busybox-static" not in apt:
            apt.append("busybox-static")  # sh, timeout, kill, ps...: the sandbox needs them
        return cls(suite=suite, mirror=mirror, apt=tuple(apt), pip=tuple(pip), env=env)

    def digest(self) -> str:
        """A short hash of everything that changes the image."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def python_version(self) -> str:
        return _PYTHON_OF_SUITE.get(self.suite, "3.11")

    def build_command(self, tag: str) -> str:
        """The shell pipeline that builds the image (``mmdebstrap ... | docker import ...``)."""
        hooks = [
            'chroot "$1" /bin/busybox --install -s /bin',
            'printf "root:x:0:0:root:/root:/bin/sh\\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\\n"'
            ' > "$1/etc/passwd"; printf "root:x:0:\\nnogroup:x:65534:\\n" > "$1/etc/group";'
            ' mkdir -p "$1/tmp" "$1/work"; chmod 1777 "$1/tmp"',
        ]
        if self.pip:
            target = f'"$1/usr/local/lib/python{self.python_version}/dist-packages"'
            version = self.python_version.replace(".", "")
            hooks.append(
                f"python3 -m pip install --quiet --no-cache-dir --target {target}"
                f" --only-binary=:all: --python-version {self.python_version}"
                f" --implementation cp --abi cp{version} --abi abi3 --abi none"
                " --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64"
                " --platform linux_x86_64 --platform any "
                + " ".join(shlex.quote(p) for p in self.pip)
            )
        excludes = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*"]
        strap = [
            "mmdebstrap",
            "--quiet",
            "--variant=extract",
            "--include=" + ",".join(self.apt),
            *[f"--dpkgopt=path-exclude={e}" for e in excludes],
            *[f"--extract-hook={h}" for h in hooks],
            self.suite,
            "-",
            self.mirror,
        ]
        changes = ['CMD ["python3"]', "WORKDIR /work", f"LABEL {RECIPE_LABEL}={self.digest()}"]
        changes += [f"ENV {k}={v}" for k, v in self.env.items()]
        load = ["docker", "import", *[f"--change={c}" for c in changes], "-", tag]
        return shlex.join(strap) + " | " + shlex.join(load)


class BuildReport(BaseModel):
    tag: str
    digest: str
    built: bool
    """False when an image of the same recipe already existed (cache hit)."""
    seconds: float


def image_digest(tag: str) -> str | None:
    """The recipe hash label of a local image, or None if there is no such image."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "null") or {}
    return str(labels.get(RECIPE_LABEL, ""))


def build_image(
    recipe: Recipe | None = None, *, tag: str = DEFAULT_IMAGE, force: bool = False
) -> BuildReport:
    """Build the image unless one with the same recipe hash exists under ``tag``."""
    recipe = recipe or Recipe.parse(DEFAULT_RECIPE)
    started = time.perf_counter()
    if not force and image_digest(tag) == recipe.digest():
        return BuildReport(tag=tag, digest=recipe.digest(), built=False, seconds=0.0)
    for program in ("mmdebstrap", "docker"):
        if shutil.which(program) is None:
            raise RuntimeError(
                f"{program} not found: apt-get install -y --no-install-recommends docker.io mmdebstrap"
            )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", recipe.build_command(tag)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"image build failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return BuildReport(
        tag=tag, digest=recipe.digest(), built=True, seconds=time.perf_counter() - started
    )


def load_recipe(path: Path | None) -> Recipe:
    """The recipe in ``path``, or the default one."""
    return Recipe.parse(path.read_text() if path else DEFAULT_RECIPE)
