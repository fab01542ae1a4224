"""``agentkit sandbox ...``: build the offline base image, reap leftover containers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio
import typer

from .config import DEFAULT_IMAGE
from .docker_sandbox import reap_orphans
from .engine import Engine
from .image import DEFAULT_RECIPE, build_image, load_recipe

app = typer.Typer(help="Docker code sandboxes.", no_args_is_help=True)


@app.command("build-image")
def build_image_command(
    recipe: Annotated[
        Path | None, typer.Option(help="Recipe file (FROM/APT/PIP/ENV lines); default: built-in")
    ] = None,
    tag: Annotated[str, typer.Option(help="Image tag")] = DEFAULT_IMAGE,
    force: Annotated[bool, typer.Option(help="Rebuild even if the image is cached")] = False,
) -> None:
    """Build the sandbox image offline (mmdebstrap + docker import); skipped when cached."""
    report = build_image(load_recipe(recipe), tag=tag, force=force)
    if report.built:
        typer.echo(f"built {report.tag} (recipe {report.digest}) in {report.seconds:.1f} s")
    else:
        typer.echo(f"{report.tag} is up to date (recipe {report.digest})")


@app.command("recipe")
def recipe_command() -> None:
    """Print the built-in recipe (copy it, add APT/PIP lines, pass it with --recipe)."""
    typer.echo(DEFAULT_RECIPE, nl=False)


@app.command("reap")
def reap_command(
    all_: Annotated[
        bool, typer.Option("--all", help="Remove every agentkit sandbox, not only orphans")
    ] = False,
) -> None:
    """Remove sandbox containers, volumes and networks whose owning process is gone (a pid
    reused by another process does not count as the owner)."""

    async def run() -> int:
        async with Engine() as engine:
            return await reap_orphans(engine, everything=all_)

    typer.echo(f"removed {anyio.run(run)} container(s)")
