"""Live game state: Redis (one Lua script per state change) or in-process memory (same rules)."""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from townhall.modules.quiz.game import CORRECT, kahoot_points, streak_bonus

# Statuses of a game; a question is open only in QUESTION.
LOBBY = "lobby"
QUESTION = "question"
RESULTS = "results"
ENDED = "ended"


@dataclass
class GameInfo:
    pin: str
    game_id: str
    quiz_id: str
    host_user_id: str
    title: str
    q_count: int
    status: str = LOBBY
    q_index: int = -1
    opened_ms: int = 0
    deadline_ms: int = 0
    limit_ms: int = 0
    points: int = 0
    player_count: int = 0

    @classmethod
    def from_hash(cls, pin: str, data: dict[str, str]) -> GameInfo:
        ints = {
            k: int(data.get(k, "0"))
            for k in ("q_count", "q_index", "opened_ms", "deadline_ms", "limit_ms", "points")
        }
        return cls(
            pin=pin,
            game_id=data["game_id"],
            quiz_id=data["quiz_id"],
            host_user_id=data["host_user_id"],
            title=data.get("title", ""),
            status=data["status"],
            player_count=int(data.get("player_count", "0")),
            **ints,
        )


@dataclass
class PlayerInfo:
    no: int
    nickname: str
    user_id: str | None = None
    muted: bool = False
    kicked: bool = False
    sid: str | None = None


@dataclass
class AnswerOutcome:
    """What one answer did; `status` is "ok" or an error code."""

    status: str
    points: int = 0
    bonus: int = 0
    streak: int = 0
    first: bool = False
    score: int = 0
    answered: int = 0
    players: int = 0
    elapsed_ms: int = 0


@dataclass
class AnswerRecord:
    kind: str
    points: int
    bonus: int
    elapsed_ms: int
    answer: Any


@dataclass
class Session:
    """A reconnect token's target: a player number (or the host) in a game."""

    pin: str
    no: int  # 0 = host
    data: dict[str, Any] = field(default_factory=dict)


class GameStore(ABC):
    """Every state change of a live game; implementations must be atomic per call."""

    def __init__(self, ttl_ms: int, first_bonus: int) -> None:
        self.ttl_ms = ttl_ms
        self.first_bonus = first_bonus

    @abstractmethod
    async def now_ms(self) -> int: ...
    @abstractmethod
    async def create_game(self, info: GameInfo, questions: list[dict[str, Any]]) -> bool: ...
    @abstractmethod
    async def game(self, pin: str) -> GameInfo | None: ...
    @abstractmethod
    async def questions(self, pin: str) -> list[dict[str, Any]]: ...
    @abstractmethod
    async def join(self, pin: str, nick_key: str, player: PlayerInfo) -> tuple[str, int]: ...
    @abstractmethod
    async def players(self, pin: str) -> dict[int, PlayerInfo]: ...
    @abstractmethod
    async def player(self, pin: str, no: int) -> PlayerInfo | None: ...
    @abstractmethod
    async def set_sid(self, pin: str, no: int, sid: str) -> None: ...
    @abstractmethod
    async def set_muted(self, pin: str, no: int, muted: bool) -> None: ...
    @abstractmethod
    async def kick(self, pin: str, no: int) -> bool: ...
    @abstractmethod
    async def open_question(
        self, pin: str, index: int, limit_ms: int, points: int
    ) -> tuple[str, int, int]: ...
    @abstractmethod
    async def answer(
        self, pin: str, no: int, index: int, kind: str, answer: Any
    ) -> AnswerOutcome: ...
    @abstractmethod
    async def close_question(self, pin: str, index: int) -> bool: ...
    @abstractmethod
    async def overdue(self, grace_ms: int) -> list[tuple[str, int]]: ...
    @abstractmethod
    async def answers(self, pin: str, index: int) -> dict[int, AnswerRecord]: ...
    @abstractmethod
    async def ranking(self, pin: str, limit: int = -1) -> list[tuple[int, int]]: ...
    @abstractmethod
    async def rank_of(self, pin: str, no: int) -> tuple[int, int]: ...
    @abstractmethod
    async def streak_of(self, pin: str, no: int) -> int: ...
    @abstractmethod
    async def finish(self, pin: str) -> bool: ...
    @abstractmethod
    async def save_session(self, token: str, session: Session) -> None: ...
    @abstractmethod
    async def load_session(self, token: str) -> Session | None: ...
    @abstractmethod
    async def host_seen(self, pins: Collection[str]) -> None: ...
    @abstractmethod
    async def absent_hosts(self, absent_ms: int) -> list[str]: ...
    @abstractmethod
    async def forget_host(self, pin: str) -> None: ...
    async def close(self) -> None:
        return None


def _member(pin: str, index: int) -> str:
    return f"{pin}:{index}"


class MemoryGameStore(GameStore):
    """One process: the same transitions as the Lua scripts, each under one asyncio lock."""

    def __init__(self, ttl_ms: int, first_bonus: int) -> None:
        super().__init__(ttl_ms, first_bonus)
        self._lock = asyncio.Lock()
        self._games: dict[str, GameInfo] = {}
        self._questions: dict[str, list[dict[str, Any]]] = {}
        self._nicks: dict[str, dict[str, int]] = {}
        self._players: dict[str, dict[int, PlayerInfo]] = {}
        self._next_no: dict[str, int] = {}
        self._scores: dict[str, dict[int, int]] = {}
        self._streaks: dict[str, dict[int, int]] = {}
        self._answers: dict[tuple[str, int], dict[int, AnswerRecord]] = {}
        self._first: set[tuple[str, int]] = set()
        self._closed: set[tuple[str, int]] = set()
        self._ended: set[str] = set()
        self._deadlines: dict[str, int] = {}
        self._sessions: dict[str, Session] = {}
        self._host_seen: dict[str, int] = {}

    async def now_ms(self) -> int:
        return int(time.time() * 1000)

    async def create_game(self, info: GameInfo, questions: list[dict[str, Any]]) -> bool:
        async with self._lock:
            if info.pin in self._games:
                return False
            self._games[info.pin] = info
            self._questions[info.pin] = questions
            self._nicks[info.pin] = {}
            self._players[info.pin] = {}
            self._next_no[info.pin] = 0
            self._scores[info.pin] = {}
            self._streaks[info.pin] = {}
            return True

    async def game(self, pin: str) -> GameInfo | None:
        game = self._games.get(pin)
        return None if game is None else GameInfo(**vars(game))

    async def questions(self, pin: str) -> list[dict[str, Any]]:
        return self._questions.get(pin, [])

    async def join(self, pin: str, nick_key: str, player: PlayerInfo) -> tuple[str, int]:
        async with self._lock:
            game = self._games.get(pin)
            if game is None:
                return "no_game", 0
            if game.status == ENDED:
                return "game_over", 0
            if nick_key in self._nicks[pin]:
                return "nickname_taken", 0
            self._next_no[pin] += 1
            no = self._next_no[pin]
            self._nicks[pin][nick_key] = no
            player.no = no
            self._players[pin][no] = player
            self._scores[pin][no] = 0
            game.player_count += 1
            return "ok", no

    async def players(self, pin: str) -> dict[int, PlayerInfo]:
        return {no: PlayerInfo(**vars(p)) for no, p in self._players.get(pin, {}).items()}

    async def player(self, pin: str, no: int) -> PlayerInfo | None:
        found = self._players.get(pin, {}).get(no)
        return None if found is None else PlayerInfo(**vars(found))

    async def set_sid(self, pin: str, no: int, sid: str) -> None:
        if (found := self._players.get(pin, {}).get(no)) is not None:
            found.sid = sid

    async def set_muted(self, pin: str, no: int, muted: bool) -> None:
        if (found := self._players.get(pin, {}).get(no)) is not None:
            found.muted = muted

    async def kick(self, pin: str, no: int) -> bool:
        async with self._lock:
            found = self._players.get(pin, {}).get(no)
            if found is None or found.kicked:
                return False
            found.kicked = True
            self._scores[pin].pop(no, None)
            self._games[pin].player_count -= 1
            return True

    async def open_question(
        self, pin: str, index: int, limit_ms: int, points: int
    ) -> tuple[str, int, int]:
        async with self._lock:
            game = self._games.get(pin)
            if game is None:
                return "no_game", 0, 0
            if game.status not in (LOBBY, RESULTS) or index != game.q_index + 1:
                return "bad_state", 0, 0
            if index >= game.q_count:
                return "no_more_questions", 0, 0
            now = await self.now_ms()
            game.status, game.q_index, game.opened_ms = QUESTION, index, now
            game.deadline_ms, game.limit_ms, game.points = now + limit_ms, limit_ms, points
            self._deadlines[_member(pin, index)] = game.deadline_ms
            return "ok", now, game.deadline_ms

    async def answer(self, pin: str, no: int, index: int, kind: str, answer: Any) -> AnswerOutcome:
        async with self._lock:
            game = self._games.get(pin)
            if game is None:
                return AnswerOutcome("no_game")
            if game.status != QUESTION:
                return AnswerOutcome("not_open")
            if game.q_index != index:
                return AnswerOutcome("wrong_question")
            now = await self.now_ms()
            if now > game.deadline_ms:
                return AnswerOutcome("too_late")
            player = self._players[pin].get(no)
            if player is None or player.kicked:
                return AnswerOutcome("kicked")
            answers = self._answers.setdefault((pin, index), {})
            if no in answers:
                return AnswerOutcome("already_answered")
            elapsed = max(now - game.opened_ms, 0)
            streaks = self._streaks[pin]
            points = bonus = first = 0
            if kind == CORRECT:
                streak = streaks[no] = streaks.get(no, 0) + 1
                if game.points > 0:
                    points = kahoot_points(elapsed, game.limit_ms, game.points)
                    bonus = streak_bonus(streak)
                    if (pin, index) not in self._first:
                        self._first.add((pin, index))
                        first = 1
                        bonus += self.first_bonus
            elif kind == "w":
                streak = streaks[no] = 0
            else:
                streak = streaks.get(no, 0)
            answers[no] = AnswerRecord(kind, points, bonus, elapsed, answer)
            score = self._scores[pin][no] = self._scores[pin].get(no, 0) + points + bonus
            return AnswerOutcome(
                "ok",
                points,
                bonus,
                streak,
                bool(first),
                score,
                len(answers),
                game.player_count,
                elapsed,
            )

    async def close_question(self, pin: str, index: int) -> bool:
        async with self._lock:
            game = self._games.get(pin)
            self._deadlines.pop(_member(pin, index), None)
            if game is None or game.status != QUESTION or game.q_index != index:
                return False
            if (pin, index) in self._closed:
                return False
            self._closed.add((pin, index))
            game.status = RESULTS
            return True

    async def overdue(self, grace_ms: int) -> list[tuple[str, int]]:
        now = await self.now_ms()
        due = [m for m, deadline in self._deadlines.items() if deadline <= now - grace_ms]
        return [(m.split(":")[0], int(m.split(":")[1])) for m in due]

    async def answers(self, pin: str, index: int) -> dict[int, AnswerRecord]:
        return dict(self._answers.get((pin, index), {}))

    async def ranking(self, pin: str, limit: int = -1) -> list[tuple[int, int]]:
        # Same order as ZREVRANGE: score descending, then member (as text) descending.
        ranked = sorted(
            self._scores.get(pin, {}).items(), key=lambda kv: (kv[1], str(kv[0])), reverse=True
        )
        return ranked if limit < 0 else ranked[:limit]

    async def rank_of(self, pin: str, no: int) -> tuple[int, int]:
        ranked = await self.ranking(pin)
        for position, (member, score) in enumerate(ranked, start=1):
            if member == no:
                return position, score
        return 0, 0

    async def streak_of(self, pin: str, no: int) -> int:
        return self._streaks.get(pin, {}).get(no, 0)

    async def finish(self, pin: str) -> bool:
        async with self._lock:
            game = self._games.get(pin)
            if game is None or game.status == QUESTION or pin in self._ended:
                return False
            self._ended.add(pin)
            game.status = ENDED
            return True

    async def save_session(self, token: str, session: Session) -> None:
        self._sessions[token] = session

    async def load_session(self, token: str) -> Session | None:
        return self._sessions.get(token)

    async def host_seen(self, pins: Collection[str]) -> None:
        now = await self.now_ms()
        self._host_seen.update(dict.fromkeys(pins, now))

    async def absent_hosts(self, absent_ms: int) -> list[str]:
        cutoff = await self.now_ms() - absent_ms
        return [pin for pin, seen in self._host_seen.items() if seen <= cutoff]

    async def forget_host(self, pin: str) -> None:
        self._host_seen.pop(pin, None)


# Every Lua script reads the clock with TIME so all workers share Redis's clock.
_NOW = (
    "local _t = redis.call('TIME')\n"
    "local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)\n"
)

CREATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[1])
return 1
"""

JOIN_LUA = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'no_game', 0} end
if st == 'ended' then return {'game_over', 0} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'nickname_taken', 0} end
local no = redis.call('HINCRBY', KEYS[1], 'next_no', 1)
redis.call('HSET', KEYS[2], ARGV[1], no)
redis.call('HSET', KEYS[3], no, ARGV[2])
redis.call('ZADD', KEYS[4], 0, no)
redis.call('HINCRBY', KEYS[1], 'player_count', 1)
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {'ok', no}
"""

KICK_LUA = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[3], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'player_count', -1)
return 1
"""

OPEN_LUA = (
    """
local g = redis.call('HMGET', KEYS[1], 'status', 'q_index', 'q_count')
if not g[1] then return {'no_game', 0, 0} end
local idx = tonumber(ARGV[1])
if (g[1] ~= 'lobby' and g[1] ~= 'results') or idx ~= tonumber(g[2]) + 1 then
  return {'bad_state', 0, 0}
end
if idx >= tonumber(g[3]) then return {'no_more_questions', 0, 0} end
"""
    + _NOW
    + """
local deadline = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'question', 'q_index', idx, 'opened_ms', now,
  'deadline_ms', deadline, 'limit_ms', ARGV[2], 'points', ARGV[3])
redis.call('ZADD', KEYS[2], deadline, ARGV[4])
return {'ok', now, deadline}
"""
)

# KEYS: game, answers(q), streaks, leaderboard, first(q), kicked
# ARGV: player, index, kind (c|w|p), first bonus, answer json, ttl ms
ANSWER_LUA = (
    """
local g = redis.call('HMGET', KEYS[1], 'status', 'q_index', 'opened_ms', 'deadline_ms',
  'limit_ms', 'points', 'player_count')
if not g[1] then return {'no_game'} end
if g[1] ~= 'question' then return {'not_open'} end
if tonumber(g[2]) ~= tonumber(ARGV[2]) then return {'wrong_question'} end
"""
    + _NOW
    + """
if now > tonumber(g[4]) then return {'too_late'} end
if redis.call('SISMEMBER', KEYS[6], ARGV[1]) == 1 then return {'kicked'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'already_answered'} end
local elapsed = now - tonumber(g[3])
if elapsed < 0 then elapsed = 0 end
local limit = tonumber(g[5])
local base = tonumber(g[6])
local points, bonus, streak, first = 0, 0, 0, 0
if ARGV[3] == 'c' then
  streak = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  if base > 0 then
    if elapsed <= 500 then
      points = base
    else
      local t = elapsed
      if t > limit then t = limit end
      points = math.floor((1 - (t / limit) / 2) * base + 0.5)
    end
    bonus = math.min(100 * math.max(streak - 1, 0), 500)
    if redis.call('SET', KEYS[5], ARGV[1], 'NX', 'PX', ARGV[6]) then
      first = 1
      bonus = bonus + tonumber(ARGV[4])
    end
  end
elseif ARGV[3] == 'w' then
  redis.call('HSET', KEYS[3], ARGV[1], 0)
else
  streak = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
end
redis.call('HSET', KEYS[2], ARGV[1], '{"k":"' .. ARGV[3] .. '","p":' .. points .. ',"b":' ..
  bonus .. ',"e":' .. elapsed .. ',"a":' .. ARGV[5] .. '}')
local answered = redis.call('HLEN', KEYS[2])
if answered == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
local score = redis.call('ZINCRBY', KEYS[4], points + bonus, ARGV[1])
return {'ok', points, bonus, streak, first, tonumber(score), answered, tonumber(g[7]), elapsed}
"""
)

CLOSE_LUA = """
local g = redis.call('HMGET', KEYS[1], 'status', 'q_index')
redis.call('ZREM', KEYS[3], ARGV[2])
if g[1] ~= 'question' or tonumber(g[2]) ~= tonumber(ARGV[1]) then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'results')
return 1
"""

SWEEP_LUA = (
    _NOW
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, 100)
"""
)

HOST_SEEN_LUA = (
    _NOW
    + """
for _, pin in ipairs(ARGV) do redis.call('ZADD', KEYS[1], now, pin) end
return 0
"""
)

FINISH_LUA = """
local st = redis.call('HGET', KEYS[1], 'status')
if not st or st == 'question' then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'ended')
return 1
"""


class RedisGameStore(GameStore):
    """Shared by every worker: each state change is one Lua script (atomic in Redis)."""

    def __init__(self, client: Any, prefix: str, ttl_ms: int, first_bonus: int) -> None:
        super().__init__(ttl_ms, first_bonus)
        self.redis: Any = client
        self.prefix = f"{prefix}quiz:"
        self._create = client.register_script(CREATE_LUA)
        self._join = client.register_script(JOIN_LUA)
        self._kick = client.register_script(KICK_LUA)
        self._open = client.register_script(OPEN_LUA)
        self._answer = client.register_script(ANSWER_LUA)
        self._close = client.register_script(CLOSE_LUA)
        self._sweep = client.register_script(SWEEP_LUA)
        self._finish = client.register_script(FINISH_LUA)
        self._host_seen = client.register_script(HOST_SEEN_LUA)

    @classmethod
    def from_url(
        cls, url: str, prefix: str, ttl_ms: int, first_bonus: int, pool: int
    ) -> RedisGameStore:
        # A blocking pool: a burst of answers waits for a connection instead of failing.
        connections: Any = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=pool, timeout=20, decode_responses=True
        )
        return cls(aioredis.Redis(connection_pool=connections), prefix, ttl_ms, first_bonus)

    def _g(self, pin: str, suffix: str = "") -> str:
        return f"{self.prefix}g:{pin}{suffix}"

    @property
    def _deadlines(self) -> str:
        return f"{self.prefix}deadlines"

    @property
    def _hosts(self) -> str:
        return f"{self.prefix}hosts"  # pin -> when a host socket was last connected (ms)

    async def close(self) -> None:
        await self.redis.aclose()

    async def now_ms(self) -> int:
        seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def create_game(self, info: GameInfo, questions: list[dict[str, Any]]) -> bool:
        fields: list[str | int] = []
        for name, value in vars(info).items():
            if name != "pin":
                fields += [name, value]
        created = await self._create(
            keys=[self._g(info.pin), self._g(info.pin, ":q")],
            args=[self.ttl_ms, json.dumps(questions), *fields],
        )
        return bool(created)

    async def game(self, pin: str) -> GameInfo | None:
        data = await self.redis.hgetall(self._g(pin))
        return GameInfo.from_hash(pin, data) if data else None

    async def questions(self, pin: str) -> list[dict[str, Any]]:
        raw = await self.redis.get(self._g(pin, ":q"))
        return [] if raw is None else list(json.loads(raw))

    async def join(self, pin: str, nick_key: str, player: PlayerInfo) -> tuple[str, int]:
        record = json.dumps({"n": player.nickname, "u": player.user_id})
        keys = [self._g(pin), self._g(pin, ":nicks"), self._g(pin, ":players"), self._g(pin, ":lb")]
        status, no = await self._join(keys=keys, args=[nick_key, record, self.ttl_ms])
        return str(status), int(no)

    async def players(self, pin: str) -> dict[int, PlayerInfo]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._g(pin, ":players"))
            pipe.smembers(self._g(pin, ":kicked"))
            pipe.smembers(self._g(pin, ":muted"))
            pipe.hgetall(self._g(pin, ":sids"))
            raw, kicked, muted, sids = await pipe.execute()
        return {
            int(no): self._player(int(no), record, kicked, muted, sids)
            for no, record in raw.items()
        }

    @staticmethod
    def _player(
        no: int, record: str, kicked: set[str], muted: set[str], sids: dict[str, str]
    ) -> PlayerInfo:
        data = json.loads(record)
        key = str(no)
        return PlayerInfo(no, data["n"], data["u"], key in muted, key in kicked, sids.get(key))

    async def player(self, pin: str, no: int) -> PlayerInfo | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._g(pin, ":players"), str(no))
            pipe.sismember(self._g(pin, ":kicked"), str(no))
            pipe.sismember(self._g(pin, ":muted"), str(no))
            pipe.hget(self._g(pin, ":sids"), str(no))
            record, kicked, muted, sid = await pipe.execute()
        if record is None:
            return None
        data = json.loads(record)
        return PlayerInfo(no, data["n"], data["u"], bool(muted), bool(kicked), sid)

    async def set_sid(self, pin: str, no: int, sid: str) -> None:
        key = self._g(pin, ":sids")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(no), sid)
            pipe.pexpire(key, self.ttl_ms)
            await pipe.execute()

    async def set_muted(self, pin: str, no: int, muted: bool) -> None:
        key = self._g(pin, ":muted")
        if muted:
            await self.redis.sadd(key, str(no))
            await self.redis.pexpire(key, self.ttl_ms)
        else:
            await self.redis.srem(key, str(no))

    async def kick(self, pin: str, no: int) -> bool:
        keys = [
            self._g(pin),
            self._g(pin, ":players"),
            self._g(pin, ":kicked"),
            self._g(pin, ":lb"),
        ]
        return bool(await self._kick(keys=keys, args=[str(no), self.ttl_ms]))

    async def open_question(
        self, pin: str, index: int, limit_ms: int, points: int
    ) -> tuple[str, int, int]:
        status, opened, deadline = await self._open(
            keys=[self._g(pin), self._deadlines],
            args=[index, limit_ms, points, _member(pin, index)],
        )
        return str(status), int(opened), int(deadline)

    async def answer(self, pin: str, no: int, index: int, kind: str, answer: Any) -> AnswerOutcome:
        keys = [
            self._g(pin),
            self._g(pin, f":a:{index}"),
            self._g(pin, ":streak"),
            self._g(pin, ":lb"),
            self._g(pin, f":first:{index}"),
            self._g(pin, ":kicked"),
        ]
        args: list[str | int] = [
            str(no),
            index,
            kind,
            self.first_bonus,
            json.dumps(answer),
            self.ttl_ms,
        ]
        result = await self._answer(keys=keys, args=args)
        if result[0] != "ok":
            return AnswerOutcome(str(result[0]))
        return AnswerOutcome(
            "ok",
            points=int(result[1]),
            bonus=int(result[2]),
            streak=int(result[3]),
            first=bool(int(result[4])),
            score=int(result[5]),
            answered=int(result[6]),
            players=int(result[7]),
            elapsed_ms=int(result[8]),
        )

    async def close_question(self, pin: str, index: int) -> bool:
        keys = [self._g(pin), self._g(pin, f":closed:{index}"), self._deadlines]
        return bool(await self._close(keys=keys, args=[index, _member(pin, index), self.ttl_ms]))

    async def overdue(self, grace_ms: int) -> list[tuple[str, int]]:
        members = await self._sweep(keys=[self._deadlines], args=[grace_ms])
        found = []
        for member in members:
            pin, _, index = str(member).partition(":")
            found.append((pin, int(index)))
        return found

    async def answers(self, pin: str, index: int) -> dict[int, AnswerRecord]:
        raw = await self.redis.hgetall(self._g(pin, f":a:{index}"))
        records = {}
        for no, value in raw.items():
            data = json.loads(value)
            records[int(no)] = AnswerRecord(data["k"], data["p"], data["b"], data["e"], data["a"])
        return records

    async def ranking(self, pin: str, limit: int = -1) -> list[tuple[int, int]]:
        stop = -1 if limit < 0 else limit - 1
        rows = await self.redis.zrevrange(self._g(pin, ":lb"), 0, stop, withscores=True)
        return [(int(member), int(score)) for member, score in rows]

    async def rank_of(self, pin: str, no: int) -> tuple[int, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrank(self._g(pin, ":lb"), str(no))
            pipe.zscore(self._g(pin, ":lb"), str(no))
            rank, score = await pipe.execute()
        return (0, 0) if rank is None else (int(rank) + 1, int(score or 0))

    async def streak_of(self, pin: str, no: int) -> int:
        value = await self.redis.hget(self._g(pin, ":streak"), str(no))
        return int(value or 0)

    async def finish(self, pin: str) -> bool:
        keys = [self._g(pin), self._g(pin, ":ended")]
        return bool(await self._finish(keys=keys, args=[self.ttl_ms]))

    async def save_session(self, token: str, session: Session) -> None:
        value = json.dumps({"pin": session.pin, "no": session.no, "data": session.data})
        await self.redis.set(f"{self.prefix}s:{token}", value, px=self.ttl_ms)

    async def load_session(self, token: str) -> Session | None:
        raw = await self.redis.get(f"{self.prefix}s:{token}")
        if raw is None:
            return None
        data = json.loads(raw)
        return Session(data["pin"], int(data["no"]), data.get("data", {}))

    async def host_seen(self, pins: Collection[str]) -> None:
        if pins:
            await self._host_seen(keys=[self._hosts], args=list(pins))

    async def absent_hosts(self, absent_ms: int) -> list[str]:
        # The deadline sweep's script: members whose score is at least `absent_ms` old.
        return [str(pin) for pin in await self._sweep(keys=[self._hosts], args=[absent_ms])]

    async def forget_host(self, pin: str) -> None:
        await self.redis.zrem(self._hosts, pin)
