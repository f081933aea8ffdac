"""Live games over Socket.IO (namespace /quiz): lobby, questions, timer, results, chat."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import socketio
import structlog

from townhall.core.auth.socket_auth import authorize_socketio, socketio_token
from townhall.core.config import Settings
from townhall.core.deps import Principal
from townhall.core.errors import AppError
from townhall.core.tasks import bounded, stop_tasks
from townhall.modules.quiz import game as rules
from townhall.modules.quiz import service
from townhall.modules.quiz.store import (
    ENDED,
    LOBBY,
    QUESTION,
    RESULTS,
    GameInfo,
    GameStore,
    MemoryGameStore,
    PlayerInfo,
    RedisGameStore,
    Session,
)

if TYPE_CHECKING:
    from townhall.core.platform import Platform

log = structlog.get_logger(__name__)

NAMESPACE = "/quiz"
FINISHED, HOST_LEFT = "finished", "host_left"  # why a game ended (`game_over`'s reason)
QUIZ_PERMISSION = "account.use"  # a signed-in socket hosts and plays as its account


class GameError(Exception):
    """Rejects one event: sent to the sender as an `error` event; the game goes on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


MESSAGES = {
    "no_game": "no game with this PIN",
    "game_over": "this game has ended",
    "nickname_taken": "this nickname is taken in this game",
    "not_open": "no question is open",
    "wrong_question": "that question is not the current one",
    "too_late": "time is up for this question",
    "already_answered": "you already answered this question",
    "kicked": "you were removed from this game",
    "bad_state": "the game is not ready for that",
    "no_more_questions": "that was the last question",
}


def _fail(code: str) -> GameError:
    return GameError(code, MESSAGES.get(code, code))


@dataclass
class Conn:
    """One socket on this worker."""

    user_id: str | None = None
    pin: str | None = None
    no: int = 0  # player number; 0 for the host or an unjoined socket
    is_host: bool = False
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    chat_times: list[float] = field(default_factory=list)


def build_store(settings: Settings) -> GameStore:
    ttl_ms = int(settings.quiz_game_ttl_hours * 3600 * 1000)
    if settings.redis_url:
        return RedisGameStore.from_url(
            settings.redis_url,
            settings.quiz_key_prefix,
            ttl_ms,
            settings.quiz_first_correct_bonus,
            settings.quiz_redis_pool,
        )
    return MemoryGameStore(ttl_ms, settings.quiz_first_correct_bonus)


class QuizServer:
    """The Socket.IO server of the quiz and the game flow behind it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        manager: socketio.AsyncManager | None = None
        if settings.redis_url:
            manager = socketio.AsyncRedisManager(
                settings.redis_url, channel=f"{settings.quiz_key_prefix}quiz-socketio"
            )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            cors_allowed_origins=settings.cors_origins or None,
            max_http_buffer_size=64 * 1024,
        )
        self.store: GameStore = build_store(settings)
        self.platform: Platform | None = None
        self.conns: dict[str, Conn] = {}
        self._questions: dict[str, list[dict[str, Any]]] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None
        self._pending: dict[str, dict[str, Any]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._register()

    # lifecycle

    async def start(self, platform: Platform) -> None:
        self.platform = platform
        self._watchdog = asyncio.create_task(self._watch(), name="quiz-watchdog")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [t for t in (self._watchdog, *self._timers.values()) if t is not None]
        await stop_tasks(tasks, timeout=5.0, what="quiz timers")
        # Results being written must reach the database before the store goes away.
        if self._background:
            await asyncio.wait(self._background, timeout=30)
        await bounded(self.store.close(), timeout=5.0, what="quiz store close")

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        """Run `work` in the background, keeping a reference until it is done."""

        async def run() -> None:
            await work

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch(self) -> None:
        """Every worker closes questions whose deadline passed (the timer owner may be dead)."""
        # Hosts are looked at less often: being absent is measured in minutes, not in ms.
        host_every = min(5.0, self.settings.quiz_host_absent_seconds / 3)
        hosts_due = 0.0
        # The flag, not only the cancel: a cancel lost inside redis-py would keep this running.
        while not self._stopping:
            try:
                for pin, index in await self.store.overdue(self.settings.quiz_close_grace_ms):
                    await self.close_question(pin, index)
                if time.monotonic() >= hosts_due:
                    hosts_due = time.monotonic() + host_every
                    await self.sweep_absent_hosts()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("quiz watchdog sweep failed")
            await asyncio.sleep(self.settings.quiz_watchdog_seconds)

    async def sweep_absent_hosts(self) -> None:
        """Note the hosts connected here, then end the games no worker has seen a host of."""
        await self.store.host_seen({c.pin for c in self.conns.values() if c.is_host and c.pin})
        absent_ms = int(self.settings.quiz_host_absent_seconds * 1000)
        for pin in await self.store.absent_hosts(absent_ms):
            await self.abandon(pin)

    async def abandon(self, pin: str) -> None:
        """End a game its host left: the scores so far are kept; a lobby is discarded."""
        game = await self.store.game(pin)
        if game is not None and game.status == QUESTION:
            await self.close_question(pin, game.q_index)
        if game is not None and await self.store.finish(pin):
            log.info("quiz host left, game ended", pin=pin, game_id=game.game_id)
            if game.q_index < 0:
                await self._emit_game_over(game, [], [], reason=HOST_LEFT)
                assert self.platform is not None
                async with self.platform.db.session() as session:
                    await service.abandon_game(session, uuid.UUID(game.game_id))
                self._questions.pop(pin, None)
            else:
                await self._end_game(game, reason=HOST_LEFT)
        current = await self.store.game(pin)
        if current is None or current.status == ENDED:
            await self.store.forget_host(pin)

    # plumbing

    def _register(self) -> None:
        self.sio.on("connect", self._connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._disconnect, namespace=NAMESPACE)
        handlers: dict[str, Callable[[str, Conn, Any], Awaitable[Any]]] = {
            "host_create": self.host_create,
            "host_join": self.host_join,
            "next": self.next_question,
            "skip": self.skip,
            "finish": self.finish,
            "kick": self.kick,
            "mute": self.mute,
            "join": self.join,
            "rejoin": self.rejoin,
            "answer": self.answer,
            "chat": self.chat,
            "me": self.me,
            "sync": self.sync,
        }
        for name, handler in handlers.items():
            self.sio.on(name, self._wrap(name, handler), namespace=NAMESPACE)
        self.sio.on("*", self._unknown, namespace=NAMESPACE)

    def _wrap(
        self, event: str, handler: Callable[[str, Conn, Any], Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def run(sid: str, data: Any = None, *extra: Any) -> Any:
            conn = self.conns.get(sid)
            if conn is None:
                return None
            try:
                self._rate_limit(conn)
                if data is not None and not isinstance(data, dict):
                    raise GameError("malformed", f"{event} expects an object")
                payload = data or {}
                foreign = "pin" in payload and str(payload["pin"]) != conn.pin
                if foreign and conn.pin and event not in ("join", "host_join"):
                    raise GameError("wrong_game", "this socket belongs to another game")
                result = await handler(sid, conn, payload)
                return {"ok": True, **(result or {})}
            except GameError as exc:
                await self._error(sid, exc.code, exc.message, event)
                return {"ok": False, "error": exc.code, "message": exc.message}
            except AppError as exc:
                await self._error(sid, "rejected", exc.message, event)
                return {"ok": False, "error": "rejected", "message": exc.message}
            except Exception:
                log.exception("quiz event failed", quiz_event=event)
                await self._error(sid, "internal", "something went wrong", event)
                return {"ok": False, "error": "internal", "message": "something went wrong"}

        return run

    async def _unknown(self, event: str, sid: str, *data: Any) -> None:
        await self._error(sid, "unknown_event", f"unknown event {event!r}", event)

    async def _error(self, sid: str, code: str, message: str, event: str) -> None:
        await self.sio.emit(
            "error",
            {"code": code, "message": message, "event": event},
            to=sid,
            namespace=NAMESPACE,
            ignore_queue=True,  # the socket is on this worker: skip the Redis round trip
        )

    def _rate_limit(self, conn: Conn) -> None:
        rate = self.settings.quiz_events_per_second
        now = time.monotonic()
        conn.tokens = min(2 * rate, conn.tokens + (now - conn.stamp) * rate)
        conn.stamp = now
        if conn.tokens < 1:
            raise GameError("rate_limited", "slow down: too many events")
        conn.tokens -= 1

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        # Players may stay anonymous; a token sent explicitly must be valid and allowed.
        token, explicit = socketio_token(environ, auth)
        conn = Conn(tokens=2 * self.settings.quiz_events_per_second)
        if token and self.platform is not None:
            try:
                principal = await authorize_socketio(self.platform, token, QUIZ_PERMISSION)
            except socketio.exceptions.ConnectionRefusedError:
                if explicit:
                    raise
            else:
                conn.user_id = str(principal.id)
        self.conns[sid] = conn

    async def _disconnect(self, sid: str, *args: Any) -> None:
        self.conns.pop(sid, None)

    async def _enter(self, sid: str, conn: Conn, pin: str, no: int, host: bool) -> None:
        if conn.pin and conn.pin != pin:
            await self.sio.leave_room(sid, f"game:{conn.pin}", namespace=NAMESPACE)
        conn.pin, conn.no, conn.is_host = pin, no, host
        await self.sio.enter_room(sid, f"game:{pin}", namespace=NAMESPACE)
        await self.sio.enter_room(
            sid, f"host:{pin}" if host else f"p:{pin}:{no}", namespace=NAMESPACE
        )

    async def _game(self, pin: str) -> GameInfo:
        game = await self.store.game(pin)
        if game is None:
            raise _fail("no_game")
        return game

    async def _qs(self, pin: str) -> list[dict[str, Any]]:
        cached = self._questions.get(pin)
        if cached is None:
            cached = self._questions[pin] = await self.store.questions(pin)
        return cached

    async def _host_game(self, conn: Conn) -> GameInfo:
        if not conn.is_host or conn.pin is None:
            raise GameError("not_host", "only the host controls the game")
        game = await self._game(conn.pin)
        if game.host_user_id != conn.user_id:
            raise GameError("not_host", "only the host controls the game")
        return game

    def _player_of(self, conn: Conn) -> tuple[str, int]:
        if conn.pin is None or conn.no == 0:
            raise GameError("not_joined", "join a game first")
        return conn.pin, conn.no

    async def _image_url(self, key: str | None) -> str | None:
        storage = getattr(self.platform, "storage", None)
        if not service.is_image_key(key) or storage is None:
            return None
        try:
            url: str = await storage.signed_url(key, expires=timedelta(hours=1))
        except Exception:
            return None
        return url

    async def _question_payload(self, game: GameInfo, now: int) -> dict[str, Any]:
        question = (await self._qs(game.pin))[game.q_index]
        return {
            **rules.public_question(question),
            "index": game.q_index,
            "total": game.q_count,
            "remaining_ms": max(game.deadline_ms - now, 0),
            "image_url": await self._image_url(question.get("image_key")),
        }

    # host events

    async def host_create(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        if conn.user_id is None:
            raise GameError("unauthorized", "sign in to host a game")
        try:
            quiz_id = uuid.UUID(str(data.get("quiz_id")))
        except ValueError as exc:
            raise GameError("malformed", "quiz_id must be a UUID") from exc
        assert self.platform is not None
        user_id = uuid.UUID(conn.user_id)
        async with self.platform.db.session() as session:
            who = await self._principal(session, user_id)
            quiz = await service.get_visible(session, quiz_id, who)
            if not quiz.questions:
                raise GameError("empty_quiz", "this quiz has no questions")
            game_id = uuid.uuid4()
            questions = service.runtime_questions(quiz, str(game_id))
            for _ in range(20):
                pin = rules.new_pin()
                info = GameInfo(
                    pin, str(game_id), str(quiz.id), conn.user_id, quiz.title, len(questions)
                )
                if await self.store.create_game(info, questions):
                    break
            else:
                raise GameError("busy", "no free game PIN, try again")
            await service.start_game(session, user_id, quiz, pin, game_id)
        await self._enter(sid, conn, pin, 0, host=True)
        await self.store.host_seen([pin])
        return {"pin": pin, "game_id": str(game_id), "title": quiz.title, "total": len(questions)}

    async def _principal(self, session: Any, user_id: uuid.UUID) -> Principal:
        from townhall.core.auth.models import User
        from townhall.core.auth.rbac import load_grants

        user = await session.get(User, user_id)
        if user is None:
            raise GameError("unauthorized", "sign in to host a game")
        return Principal(user=user, family_id=user_id, grants=await load_grants(session, user_id))

    async def host_join(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        pin = str(data.get("pin", ""))
        game = await self._game(pin)
        if conn.user_id is None or game.host_user_id != conn.user_id:
            raise GameError("not_host", "only the host controls the game")
        await self._enter(sid, conn, pin, 0, host=True)
        await self.store.host_seen([pin])
        return await self.snapshot(game, None)

    async def next_question(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        game = await self._host_game(conn)
        index = game.q_index + 1
        questions = await self._qs(game.pin)
        if index >= len(questions):
            raise _fail("no_more_questions")
        question = questions[index]
        status, opened, deadline = await self.store.open_question(
            game.pin, index, question["limit_ms"], question["points"]
        )
        if status != "ok":
            raise _fail(status)
        game.status, game.q_index, game.deadline_ms = QUESTION, index, deadline
        payload = await self._question_payload(game, opened)
        await self.sio.emit("question", payload, room=f"game:{game.pin}", namespace=NAMESPACE)
        # This worker's timer closes on time; if the worker dies, every worker's watchdog
        # finds the deadline in the store's deadline index and closes it (once, SET NX).
        self._schedule_close(game.pin, index, (deadline - opened) / 1000)
        return {"index": index, "remaining_ms": deadline - opened}

    def _schedule_close(self, pin: str, index: int, delay: float) -> None:
        async def timer() -> None:
            await asyncio.sleep(delay)
            await self.close_question(pin, index)

        previous = self._timers.pop(pin, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(timer(), name=f"quiz-timer-{pin}")
        self._timers[pin] = task
        task.add_done_callback(
            lambda t: self._timers.pop(pin, None) if self._timers.get(pin) is t else None
        )

    async def skip(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        game = await self._host_game(conn)
        if game.status != QUESTION:
            raise _fail("not_open")
        await self.close_question(game.pin, game.q_index)
        return {}

    async def finish(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        game = await self._host_game(conn)
        if game.status == QUESTION:
            await self.close_question(game.pin, game.q_index)
        if not await self.store.finish(game.pin):
            raise _fail("game_over" if game.status == ENDED else "bad_state")
        podium = await self._end_game(game)
        return {"podium": podium}

    async def kick(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        game = await self._host_game(conn)
        no = _int(data.get("player"))
        player = await self.store.player(game.pin, no)
        if player is None or not await self.store.kick(game.pin, no):
            raise GameError("no_player", "no such player")
        await self.sio.emit(
            "kicked", {"player": no}, room=f"p:{game.pin}:{no}", namespace=NAMESPACE
        )
        await self.sio.emit(
            "player_left", {"player": no}, room=f"host:{game.pin}", namespace=NAMESPACE
        )
        if player.sid:
            await self.sio.disconnect(player.sid, namespace=NAMESPACE)
        if game.status == QUESTION:
            # The kicked player may have been the last one the question was waiting for.
            current = await self.store.game(game.pin)
            answered = len(await self.store.answers(game.pin, game.q_index))
            if current is not None and answered >= current.player_count:
                await self.close_question(game.pin, game.q_index)
        return {}

    async def mute(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        game = await self._host_game(conn)
        no = _int(data.get("player"))
        if await self.store.player(game.pin, no) is None:
            raise GameError("no_player", "no such player")
        muted = bool(data.get("muted", True))
        await self.store.set_muted(game.pin, no, muted)
        return {"player": no, "muted": muted}

    # player events

    async def join(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        pin = str(data.get("pin", "")).strip()
        if not (len(pin) == 6 and pin.isdigit()):
            raise GameError("bad_pin", "a game PIN has 6 digits")
        try:
            nickname = rules.clean_nickname(data.get("nickname"))
        except ValueError as exc:
            raise GameError("bad_nickname", str(exc)) from exc
        if conn.no:
            raise GameError("already_joined", "this socket already plays a game")
        status, no = await self.store.join(
            pin, rules.nickname_key(nickname), PlayerInfo(0, nickname, conn.user_id)
        )
        if status != "ok":
            raise _fail(status)
        token = secrets.token_urlsafe(24)
        _, _, game = await asyncio.gather(
            self.store.save_session(token, Session(pin, no)),
            self.store.set_sid(pin, no, sid),
            self._game(pin),
        )
        await self._enter(sid, conn, pin, no, host=False)
        await self.sio.emit(
            "player_joined",
            {"player": no, "nickname": nickname},
            room=f"host:{pin}",
            namespace=NAMESPACE,
        )
        self._emit_later("lobby", f"game:{pin}", {"players": game.player_count})
        if game.status == LOBBY:
            # Nothing to restore yet: skip the snapshot's round trips (joins come in bursts).
            lobby = self._base_state(game)
            return {
                "token": token,
                **lobby,
                "player": no,
                "nickname": nickname,
                "score": 0,
                "rank": 0,
                "streak": 0,
            }
        return {"token": token, **await self.snapshot(game, no)}

    async def rejoin(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        token = data.get("token")
        session = await self.store.load_session(token) if isinstance(token, str) else None
        if session is None:
            raise GameError("bad_token", "this game session is unknown or expired")
        player = await self.store.player(session.pin, session.no)
        if player is None or player.kicked:
            raise _fail("kicked")
        game = await self._game(session.pin)
        await self.store.set_sid(session.pin, session.no, sid)
        await self._enter(sid, conn, session.pin, session.no, host=False)
        return await self.snapshot(game, session.no)

    async def answer(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        pin, no = self._player_of(conn)
        index = data.get("index")
        questions = await self._qs(pin)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(questions):
            raise GameError("malformed", "answer needs the question's index")
        try:
            kind, canonical = rules.check_answer(questions[index], data.get("answer"))
        except rules.AnswerInvalid as exc:
            raise GameError("bad_answer", str(exc)) from exc
        outcome = await self.store.answer(pin, no, index, kind, canonical)
        if outcome.status != "ok":
            raise _fail(outcome.status)
        counts = {"answered": outcome.answered, "players": outcome.players}
        self._emit_later("answer_count", f"host:{pin}", counts)
        if outcome.answered >= outcome.players:
            await self.close_question(pin, index)
        return {
            "index": index,
            "points": outcome.points,
            "bonus": outcome.bonus,
            "streak": outcome.streak,
            "first": outcome.first,
            "score": outcome.score,
        }

    def _emit_later(self, event: str, room: str, data: dict[str, Any]) -> None:
        """Coalesce frequent updates: at most one emit per 200 ms per room and worker."""
        key = f"{event}|{room}"
        if key in self._pending:
            self._pending[key] = data
            return
        self._pending[key] = data

        async def flush() -> None:
            await asyncio.sleep(0.2)
            latest = self._pending.pop(key, None)
            if latest is not None:
                await self.sio.emit(event, latest, room=room, namespace=NAMESPACE)

        self._spawn(flush(), f"quiz-emit-{key}")

    async def chat(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        if conn.pin is None:
            raise GameError("not_joined", "join a game first")
        text = data.get("text")
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= 200:
            raise GameError("bad_message", "a message has 1 to 200 characters")
        game = await self._game(conn.pin)
        if game.status == QUESTION:
            raise GameError("chat_closed", "chat is closed while a question runs")
        nickname = "Host"
        if not conn.is_host:
            player = await self.store.player(conn.pin, conn.no)
            if player is None or player.kicked:
                raise _fail("kicked")
            if player.muted:
                raise GameError("muted", "the host muted you")
            nickname = player.nickname
        now = time.monotonic()
        conn.chat_times = [t for t in conn.chat_times if t > now - 60]
        if len(conn.chat_times) >= self.settings.quiz_chat_per_minute:
            raise GameError("rate_limited", "too many messages; wait a moment")
        if rules.is_profane(text):
            raise GameError("bad_message", "please keep it friendly")
        conn.chat_times.append(now)
        message = {
            "player": conn.no,
            "nickname": nickname,
            "text": text.strip(),
            "host": conn.is_host,
        }
        await self.sio.emit("chat", message, room=f"game:{conn.pin}", namespace=NAMESPACE)
        return {}

    async def me(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        pin, no = self._player_of(conn)
        rank, score = await self.store.rank_of(pin, no)
        return {"rank": rank, "score": score, "streak": await self.store.streak_of(pin, no)}

    async def sync(self, sid: str, conn: Conn, data: dict[str, Any]) -> dict[str, Any]:
        if conn.pin is None:
            raise GameError("not_joined", "join a game first")
        return await self.snapshot(await self._game(conn.pin), conn.no or None)

    @staticmethod
    def _base_state(game: GameInfo) -> dict[str, Any]:
        return {
            "pin": game.pin,
            "game_id": game.game_id,
            "title": game.title,
            "status": game.status,
            "index": game.q_index,
            "total": game.q_count,
            "players": game.player_count,
        }

    async def snapshot(self, game: GameInfo, no: int | None) -> dict[str, Any]:
        """Everything a (re)connecting screen needs to draw the current state."""
        now = await self.store.now_ms()
        state = self._base_state(game)
        if game.status in (QUESTION, RESULTS) and game.q_index >= 0:
            state["question"] = await self._question_payload(game, now)
        if no is None:
            players = await self.store.players(game.pin)
            state["roster"] = [
                {"player": p.no, "nickname": p.nickname, "muted": p.muted}
                for p in players.values()
                if not p.kicked
            ]
            if game.status == QUESTION:
                state["answered"] = len(await self.store.answers(game.pin, game.q_index))
            return state
        player = await self.store.player(game.pin, no)
        rank, score = await self.store.rank_of(game.pin, no)
        state.update(
            player=no,
            nickname=player.nickname if player else "",
            score=score,
            rank=rank,
            streak=await self.store.streak_of(game.pin, no),
        )
        if game.status == QUESTION:
            mine = (await self.store.answers(game.pin, game.q_index)).get(no)
            state["answered"] = mine is not None
        return state

    # closing and ending

    async def close_question(self, pin: str, index: int) -> bool:
        """Close once across all workers (SET NX inside the store), then broadcast results."""
        if not await self.store.close_question(pin, index):
            return False
        game = await self._game(pin)
        questions = await self._qs(pin)
        question = questions[index]
        answers = await self.store.answers(pin, index)
        ranking = await self.store.ranking(pin)
        players = await self.store.players(pin)
        top = [
            {"player": no, "nickname": players[no].nickname if no in players else "?", "score": s}
            for no, s in ranking[:5]
        ]
        gained = {no: r.points + r.bonus for no, r in answers.items()}
        limit = self.settings.quiz_ranking_in_broadcast
        payload = {
            "index": index,
            "total": game.q_count,
            "final": index == game.q_count - 1,
            "correct": rules.correct_answer(question),
            "distribution": rules.distribution(
                question, [(r.kind, r.answer) for r in answers.values()]
            ),
            "top": top,
            # Compact: [player, score, points this question], rank = position + 1.
            "ranking": [[no, s, gained.get(no, 0)] for no, s in ranking[:limit]],
            "players": len(ranking),
        }
        await self.sio.emit("question_results", payload, room=f"game:{pin}", namespace=NAMESPACE)
        if payload["final"]:
            # Scores are final: store them now, whether or not the host ever presses finish.
            # Only the worker that closed the last question (SET NX) gets here.
            self._spawn(self._persist_quietly(game), f"quiz-results-{pin}")
        return True

    async def _persist_quietly(self, game: GameInfo) -> None:
        try:
            await self._persist(game)
        except Exception:
            # The host's finish stores them again (the write is once per game).
            log.exception("storing quiz results failed", pin=game.pin, game_id=game.game_id)

    async def _end_game(self, game: GameInfo, reason: str = FINISHED) -> list[dict[str, Any]]:
        ranking = await self.store.ranking(game.pin)
        players = await self.store.players(game.pin)
        podium = [
            {"rank": i + 1, "player": no, "nickname": players[no].nickname, "score": s}
            for i, (no, s) in enumerate(ranking[:3])
            if no in players
        ]
        await self._emit_game_over(game, podium, ranking, reason)
        await self._persist(game)  # a no-op when the last question's close stored them
        self._questions.pop(game.pin, None)
        return podium

    async def _emit_game_over(
        self,
        game: GameInfo,
        podium: list[dict[str, Any]],
        ranking: list[tuple[int, int]],
        reason: str,
    ) -> None:
        payload = {
            "podium": podium,
            "ranking": [[no, s] for no, s in ranking[: self.settings.quiz_ranking_in_broadcast]],
            "players": len(ranking),
            "reason": reason,
        }
        await self.sio.emit("game_over", payload, room=f"game:{game.pin}", namespace=NAMESPACE)

    async def _persist(self, game: GameInfo) -> None:
        """Write every player's result per question to the database (once per game)."""
        assert self.platform is not None
        ranking = await self.store.ranking(game.pin)
        players = await self.store.players(game.pin)
        questions = await self._qs(game.pin)
        ranks = {no: (i + 1, s) for i, (no, s) in enumerate(ranking)}
        answer_rows: list[dict[str, Any]] = []
        correct: dict[int, int] = {}
        for index, question in enumerate(questions[: max(game.q_index + 1, 0)]):
            records = await self.store.answers(game.pin, index)
            for no in players:
                record = records.get(no)
                outcome = {"c": "correct", "w": "wrong", "p": "poll"}.get(
                    record.kind if record else "", "none"
                )
                if outcome == "correct":
                    correct[no] = correct.get(no, 0) + 1
                answer_rows.append(
                    {
                        "player_number": no,
                        "question_index": index,
                        "question_id": uuid.UUID(question["id"]),
                        "answer": record.answer if record else None,
                        "outcome": outcome,
                        "points": record.points if record else 0,
                        "bonus": record.bonus if record else 0,
                        "elapsed_ms": record.elapsed_ms if record else None,
                    }
                )
        player_rows = [
            {
                "number": no,
                "nickname": p.nickname,
                "user_id": uuid.UUID(p.user_id) if p.user_id else None,
                "score": ranks.get(no, (0, 0))[1],
                "rank": ranks.get(no, (0, 0))[0],
                "correct_count": correct.get(no, 0),
                "kicked": p.kicked,
            }
            for no, p in players.items()
        ]
        async with self.platform.db.session() as session:
            await service.store_results(session, uuid.UUID(game.game_id), player_rows, answer_rows)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GameError("malformed", "player must be a player number")
    return value


__all__ = ["LOBBY", "NAMESPACE", "QuizServer"]
