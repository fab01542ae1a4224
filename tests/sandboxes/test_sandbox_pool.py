"""SandboxPool against the real engine: warm hand-out, reset, replacement, reaping, cleanup."""

from __future__ import annotations

import sys

import anyio
import pytest

from agentkit_sandboxes import docker_sandbox
from agentkit_sandboxes.config import LABEL, LABEL_OWNER_HOST, LABEL_OWNER_PID, owner_labels
from agentkit_sandboxes.docker_sandbox import DockerSandbox, reap_orphans
from agentkit_sandboxes.engine import Engine
from agentkit_sandboxes.pool import SandboxPool
from tests.sandbox_support import TEST_CONFIG, my_containers

pytestmark = [pytest.mark.docker, pytest.mark.anyio]


async def test_pool_hands_out_reset_sandboxes(engine: Engine) -> None:
    async with SandboxPool(TEST_CONFIG, size=1, engine=engine) as pool:
        assert len(my_containers()) >= 1
        async with pool.sandbox() as first:
            await first.write_file("secret.txt", "from run 1")
            await first.exec("sleep 300 >/dev/null 2>&1 &")
            first_id = first.container_id
        async with pool.sandbox() as second:
            assert second.container_id == first_id  # same warm container, reused
            assert await second.list_files() == []
            procs = await second.exec("ps -o user,comm | grep -c -E '^nobody +sleep$' || true")
            assert procs.stdout.strip() == "0"
    assert first_id not in my_containers()


async def test_pool_serves_more_agents_than_containers(engine: Engine) -> None:
    results: list[str] = []

    async with SandboxPool(TEST_CONFIG, size=2, engine=engine) as pool:

        async def agent(i: int) -> None:
            async with pool.sandbox() as box:
                await box.write_file("me.txt", str(i))
                result = await box.exec("cat me.txt; ls | wc -l")
                results.append(result.stdout)

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(agent, i)
        ids = {sb.container_id for sb in pool._all}
        assert len(ids) == 2
    # each agent saw only its own file: the work dir was wiped between runs
    assert sorted(results) == sorted(f"{i}1\n" for i in range(6))


async def test_worn_out_sandbox_is_replaced(engine: Engine) -> None:
    async with SandboxPool(TEST_CONFIG, size=1, max_uses=1, engine=engine) as pool:
        box = await pool.acquire()
        first_id = box.container_id
        await box.exec("true")
        await box.close()
        again = await pool.acquire()
        try:
            assert again.container_id != first_id
            assert pool.replaced == 1
        finally:
            await again.close()


async def test_close_removes_every_container(engine: Engine) -> None:
    before = set(my_containers())
    pool = SandboxPool(TEST_CONFIG, size=3, engine=engine)
    async with pool:
        assert len(set(my_containers()) - before) == 3
        await pool.acquire()  # left checked out on purpose
    assert set(my_containers()) - before == set()


async def test_orphans_of_dead_owners_are_reaped(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = await anyio.run_process([sys.executable, "-c", "import os; print(os.getpid())"])
    dead_pid = int(dead.stdout)
    fake = {**owner_labels(), LABEL_OWNER_PID: str(dead_pid)}
    monkeypatch.setattr(docker_sandbox, "owner_labels", lambda: fake)
    orphan = await DockerSandbox.create(engine, TEST_CONFIG)
    monkeypatch.undo()
    alive = await DockerSandbox.create(engine, TEST_CONFIG)
    try:
        assert fake[LABEL] == "1" and fake[LABEL_OWNER_HOST]
        removed = await reap_orphans(engine)
        assert removed >= 1
        listed = {c["Id"] for c in await engine.containers_with_label(f"{LABEL}=1")}
        assert orphan.container_id not in listed
        assert alive.container_id in listed
    finally:
        await orphan.destroy()
        await alive.destroy()
