"""Broadcasting to a channel's subscribers, with the next sequence number when history is on.

``apublish(channel, data)`` / ``publish(channel, data)``:

1. checks everything first (channel name, the data's encoding, the *envelope's* size against
   128 KiB, the send options): a bad call raises before any query;
2. with history on (an enabled :class:`~aws_ws_async.models.ChannelHistory` row), in ONE
   transaction: ``UPDATE ... SET last_seq = last_seq + 1`` (an ORM ``F()`` update), re-read the
   new value, INSERT the :class:`~aws_ws_async.models.ChannelMessage`, COMMIT;
3. only then walks the channel's connected subscribers and posts the frame through the existing
   engine (``asend_message`` on the queryset: keyset pages, bounded concurrency, gone rows marked).

Why an ``F()`` update and not ``select_for_update()``: the UPDATE both increments in the
database and takes the row lock in one statement, so two publishers on one channel queue on that
lock until the first COMMITs. A seq therefore becomes visible together with its message, in seq
order, with no holes (a reader never sees 6 committed before 5). ``select_for_update()`` would
take the same lock with one more statement (SELECT, then UPDATE). With history off the UPDATE
matches no row: nothing is written and the frame carries no ``seq``.

Why commit before posting: a subscriber that subscribes meanwhile either sees the committed row
in its replay, or committed its subscription before the audience walk began and is posted to
live (``docs/channels.md``, "Guarantees"). For the same reason publishing is refused inside
``transaction.atomic()``: a rollback after the posts would hand the seq out a second time and
clients would drop the new message as a duplicate. Publish from ``transaction.on_commit()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from aws_ws_async import sync
from aws_ws_async.channels.frames import check_channel, encode_data, message_frame
from aws_ws_async.models.history import ChannelHistory, ChannelMessage
from aws_ws_async.models.operations import bulk_call, send_operation
from aws_ws_async.models.sessions import WebSocketSession, WebSocketSessionQuerySet

if TYPE_CHECKING:
    from aws_ws_async.delivery import DeliveryReport
    from aws_ws_async.models.broadcasts import Broadcast

#: The keyword arguments ``publish`` passes on to ``asend_message`` / ``send_message``.
SEND_OPTIONS = frozenset(
    {"concurrency", "db_chunk_size", "collect_delivered", "timeout", "progress"}
)


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publish did: the channel, its seq (None with history off) and the delivery."""

    channel: str
    seq: int | None
    delivery: DeliveryReport


def database(using: str | None) -> str:
    """The database every query of a publish or replay uses: the one history is written to.

    The audience is read there too (not from a read replica): a subscription committed on the
    primary must be seen by the walk that follows the history COMMIT.
    """
    return using or router.db_for_write(ChannelHistory)


def audience(channel: str, using: str) -> WebSocketSessionQuerySet:
    """The connected sessions subscribed to ``channel`` on database ``using``."""
    return WebSocketSession.objects.using(using).subscribed_to(channel)


def _check_options(options: dict[str, Any], rows: WebSocketSessionQuerySet) -> None:
    unknown = sorted(set(options) - SEND_OPTIONS)
    if unknown:
        raise TypeError(
            f"publish() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it accepts using= and {', '.join(sorted(SEND_OPTIONS))}"
        )
    # The very checks asend_message makes, run now: a bad option must not cost a seq.
    values = {k: options.get(k) for k in SEND_OPTIONS - {"collect_delivered"}}
    bulk_call(
        rows,
        send_operation(b"{}"),
        collect_delivered=options.get("collect_delivered", True),
        **values,
    )


def record(channel: str, data_json: bytes, using: str) -> tuple[int | None, bytes]:
    """Take the next seq and keep the frame (history on), or build the plain frame (off).

    Runs in the caller's thread (sync) or in one worker thread (async): five statements, one
    thread hop (history off: the one UPDATE that finds no enabled row). Refused inside the
    caller's ``atomic()`` only when history is on: a rollback after the posts would hand the
    seq out again. A frame over 128 KiB once the seq is in raises inside the transaction, so the
    seq is rolled back with it.
    """
    outer_transaction = sync.in_transaction(using)
    with transaction.atomic(using=using):
        rows = ChannelHistory.objects.using(using).filter(channel_name=channel, enabled=True)
        if not rows.update(last_seq=F("last_seq") + 1):
            # History off: a plain send, allowed inside atomic() as asend_message() is.
            return None, message_frame(channel, data_json, None)
        if outer_transaction:  # raising rolls our savepoint, and so the seq, back
            sync.check_not_in_transaction("publish", using)
        history_id, seq = rows.values_list("pk", "last_seq").get()
        frame = message_frame(channel, data_json, seq)
        ChannelMessage.objects.using(using).create(
            history_id=history_id, seq=seq, frame=frame, created_at=timezone.now()
        )
    return seq, frame


def _prepare(channel: Any, data: Any, using: str | None, options: dict[str, Any]) -> Any:
    name = check_channel(channel)
    data_json = encode_data(data)
    message_frame(name, data_json, None)  # the size without seq: refused before any query
    db = database(using)
    rows = audience(name, db)
    _check_options(options, rows)
    return name, data_json, db, rows


async def apublish(
    channel: str, data: Any, *, using: str | None = None, **send_kwargs: Any
) -> PublishReport:
    """Broadcast ``data`` to ``channel``'s subscribers (with the next seq when history is on).

    ``send_kwargs`` are ``asend_message``'s options (``concurrency``, ``db_chunk_size``,
    ``collect_delivered``, ``timeout``, ``progress``).
    """
    name, data_json, db, rows = _prepare(channel, data, using, send_kwargs)
    seq, frame = await sync_to_async(record)(name, data_json, db)
    report = await rows.asend_message(frame, **send_kwargs)
    return PublishReport(name, seq, report)


def publish(
    channel: str, data: Any, *, using: str | None = None, **send_kwargs: Any
) -> PublishReport:
    """Sync twin of :func:`apublish`: queries in this thread, posts on the portal loop."""
    sync.check_not_on_loop()
    name, data_json, db, rows = _prepare(channel, data, using, send_kwargs)
    seq, frame = record(name, data_json, db)
    report = rows.send_message(frame, **send_kwargs)
    return PublishReport(name, seq, report)


@dataclass(frozen=True, slots=True)
class EnqueuedPublish:
    """An enqueued publish: its seq (None with history off) and the ``Broadcast`` row to watch."""

    channel: str
    seq: int | None
    broadcast: Broadcast


def enqueue_publish(channel: str, data: Any, *, using: str | None = None) -> EnqueuedPublish:
    """:func:`publish` for channels too large for one process: the posts run on task workers.

    The seq and the kept frame are committed here, as in :func:`publish`; the frame is then
    handed to ``enqueue_message`` on the channel's audience (sharded, resumable, one rate budget;
    ``docs/scaling.md``). A task backend is required before anything is written.
    """
    from aws_ws_async.scaleout.framework import check_backend

    sync.check_not_on_loop()
    name, data_json, db, rows = _prepare(channel, data, using, {})
    check_backend()
    seq, frame = record(name, data_json, db)
    return EnqueuedPublish(name, seq, rows.enqueue_message(frame))


async def aenqueue_publish(channel: str, data: Any, *, using: str | None = None) -> EnqueuedPublish:
    """Async twin of :func:`enqueue_publish` (the rows written in one thread hop)."""
    from aws_ws_async.scaleout.framework import check_backend

    name, data_json, db, rows = _prepare(channel, data, using, {})
    check_backend()

    def write() -> EnqueuedPublish:
        seq, frame = record(name, data_json, db)
        return EnqueuedPublish(name, seq, rows.enqueue_message(frame))

    return await sync_to_async(write)()
