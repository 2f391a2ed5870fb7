"""The room page's stage controls over HTTP: the raised hands and speakers for staff, each
action through the core's stage service (so the events Discord and Slack follow fire), and
the core's staff rule refusing everyone else."""

from __future__ import annotations

from audio import Room, RoomRegistry
from audio.attendance import ListenerLog
from bot.actors import Actor, UserRef
from bot.events import SpaceEnded, StageChanged
from bot.models import Platform
from tests.audio.conftest import HOST, SPACE, JoinFn, World


def names(people: list[dict[str, object]]) -> list[object]:
    return [p["display_name"] for p in people]


async def test_staff_see_the_hands_live_and_promote_dismiss_mute_and_remove(world: World) -> None:
    core, space_id = world.core, world.space_id
    changes: list[tuple[str, str]] = []

    async def seen(event: StageChanged) -> None:
        changes.append((event.change, event.identity_key))

    core.bus.subscribe(StageChanged, seen)
    stage_url = f"/rooms/{space_id}/stage"
    ann, bob = await world.ticket("ann"), await world.ticket("bob")

    empty = (await world.http.get(stage_url, headers=world.host.bearer)).json()
    assert empty == {"hands": [], "speakers": []}
    for person in (ann, bob):  # raised from the page, as Discord's request to speak would be
        raised = await world.http.post(
            f"/rooms/{space_id}/hand", json={"up": True}, headers=person.bearer
        )
        assert raised.status_code == 200
    stage = (await world.http.get(stage_url, headers=world.host.bearer)).json()
    assert names(stage["hands"]) == ["Ann", "Bob"]  # oldest first, as `/stage queue` lists them
    assert stage["hands"][0]["key"] == ann.key

    async def act(action: str, who: str) -> dict[str, list[dict[str, object]]]:
        response = await world.http.post(
            stage_url, json={"action": action, "who": who}, headers=world.host.bearer
        )
        assert response.status_code == 200, response.text
        body: dict[str, list[dict[str, object]]] = response.json()
        return body

    stage = await act("promote", ann.key)
    assert names(stage["hands"]) == ["Bob"] and names(stage["speakers"]) == ["Ann"]
    stage = await act("dismiss", bob.key)
    assert stage["hands"] == []
    assert (await core.stage.state(space_id)).queue == []  # `/stage queue` agrees
    stage = await act("mute", ann.key)
    assert stage["speakers"][0]["muted"] is True
    stage = await act("unmute", ann.key)
    assert stage["speakers"][0]["muted"] is False
    stage = await act("remove", ann.key)
    assert stage["speakers"] == []
    await core.bus.drain()
    assert [c for c, _ in changes] == [
        "hand_raised",
        "hand_raised",
        "promoted",
        "hand_lowered",
        "muted",
        "unmuted",
        "removed",
    ]
    assert changes[2] == ("promoted", ann.key) and changes[3] == ("hand_lowered", bob.key)

    # A refusal of the core is its message, not a 500.
    again = await world.http.post(
        stage_url, json={"action": "dismiss", "who": bob.key}, headers=world.host.bearer
    )
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "Bob has no hand raised."


async def test_the_promoted_listener_sees_it_in_their_own_state(world: World) -> None:
    ann = await world.ticket("ann")
    await world.join(world.host, tone=440)
    await world.join(ann)
    await world.http.post(f"/rooms/{world.space_id}/hand", json={"up": True}, headers=ann.bearer)
    response = await world.http.post(
        f"/rooms/{world.space_id}/stage",
        json={"action": "promote", "who": ann.key},
        headers=world.host.bearer,
    )
    assert response.status_code == 200
    await world.core.bus.drain()
    state = await world.http.get(f"/rooms/{world.space_id}/state", headers=ann.bearer)
    assert state.json()["you"]["role"] == "speaker"
    me = (await world.http.get(f"/rooms/{world.space_id}/me", headers=ann.bearer)).json()
    assert me["role"] == "speaker" and me["runs_stage"] is False


async def test_listeners_and_strangers_are_refused_by_the_core(world: World) -> None:
    ann, bob = await world.ticket("ann"), await world.ticket("bob")
    url = f"/rooms/{world.space_id}/stage"
    assert (await world.http.get(url)).status_code == 401
    listing = await world.http.get(url, headers=ann.bearer)
    assert listing.status_code == 403
    assert listing.json()["error"]["message"] == (
        "Only the host, co-hosts and moderators can manage the stage."
    )
    promote = await world.http.post(
        url, json={"action": "promote", "who": bob.key}, headers=ann.bearer
    )
    assert promote.status_code == 403
    end = await world.http.post(
        f"/rooms/{world.space_id}/end", json={"confirm": True}, headers=ann.bearer
    )
    assert end.status_code == 403
    wrong = await world.http.post(
        url, json={"action": "promote", "who": "slack:T1:U1"}, headers=world.host.bearer
    )
    assert wrong.status_code == 422
    bad = await world.http.post(
        url, json={"action": "launch", "who": bob.key}, headers=world.host.bearer
    )
    assert bad.status_code == 422


async def test_a_moderators_pass_runs_the_stage_and_a_former_cohosts_does_not(
    world: World,
) -> None:
    core, space_id = world.core, world.space_id
    ann = await world.ticket("ann")
    await world.http.post(f"/rooms/{space_id}/hand", json={"up": True}, headers=ann.bearer)
    mod = await world.staff(
        Actor(Platform.DISCORD, "guild1", "mo", "Mo", is_moderator=True), "moderator"
    )
    listing = await world.http.get(f"/rooms/{space_id}/stage", headers=mod.bearer)
    assert listing.status_code == 200 and names(listing.json()["hands"]) == ["Ann"]

    await core.spaces.set_cohost(HOST, space_id, UserRef("cora", "Cora"), add=True)
    cora = await world.staff(Actor(Platform.DISCORD, "guild1", "cora", "Cora"), "cohost")
    assert (
        await world.http.get(f"/rooms/{space_id}/stage", headers=cora.bearer)
    ).status_code == 200
    await core.spaces.set_cohost(HOST, space_id, UserRef("cora", "Cora"), add=False)
    await core.bus.drain()
    gone = await world.http.get(f"/rooms/{space_id}/stage", headers=cora.bearer)
    assert gone.status_code == 403


async def test_staff_end_the_space_from_the_room(world: World) -> None:
    ended: list[SpaceEnded] = []

    async def seen(event: SpaceEnded) -> None:
        ended.append(event)

    world.core.bus.subscribe(SpaceEnded, seen)
    unconfirmed = await world.http.post(f"/rooms/{world.space_id}/end", headers=world.host.bearer)
    assert unconfirmed.status_code == 422  # a stray POST ends nothing
    response = await world.http.post(
        f"/rooms/{world.space_id}/end", json={"confirm": True}, headers=world.host.bearer
    )
    assert response.status_code == 200 and response.json() == {"status": "ended"}
    await world.core.bus.drain()
    assert [e.space_id for e in ended] == [world.space_id]
    again = await world.http.post(
        f"/rooms/{world.space_id}/end", json={"confirm": True}, headers=world.host.bearer
    )
    assert again.status_code == 403  # the room's gate: the Space is not live any more


async def test_the_room_reports_listener_counts_when_they_change(
    registry: RoomRegistry, room: Room, join: JoinFn
) -> None:
    reported: list[tuple[int, int]] = []

    async def report(space_id: int, count: int) -> None:
        reported.append((space_id, count))

    log = ListenerLog(registry, report)
    await log.sample()
    assert reported == [(SPACE, 0)]
    await join("hal", "host")
    await join("ann", "listener")
    await join("bob", "listener")
    await log.sample()
    await log.sample()  # nothing changed: nothing reported
    assert reported == [(SPACE, 0), (SPACE, 2)]
    await room.remove("ann")
    await log.sample()
    await registry.close(SPACE)
    await log.sample()  # the room closed with a listener in it
    assert reported[2:] == [(SPACE, 1), (SPACE, 0)]
