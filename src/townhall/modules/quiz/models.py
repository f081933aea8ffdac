"""Quizzes, questions, tags, played games with per-question results, and the community tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from townhall.core.db import Base, TimestampMixin, new_id, utcnow


class Quiz(TimestampMixin, Base):
    __tablename__ = "quiz_quizzes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_public: Mapped[bool] = mapped_column(default=False, index=True)
    # Set by an admin acting on an abuse report: hidden quizzes leave the public library.
    is_hidden: Mapped[bool] = mapped_column(default=False)
    cover_image_key: Mapped[str | None] = mapped_column(String(500), default=None)
    play_count: Mapped[int] = mapped_column(default=0)
    like_count: Mapped[int] = mapped_column(default=0)

    questions: Mapped[list[Question]] = relationship(
        back_populates="quiz",
        order_by="Question.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    tags: Mapped[list[QuizTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="QuizTag.tag"
    )


class Question(Base):
    """One question; `spec` holds the type-specific options and the correct answer."""

    __tablename__ = "quiz_questions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(String(1000))
    image_key: Mapped[str | None] = mapped_column(String(500), default=None)
    time_limit: Mapped[int] = mapped_column(default=20)  # seconds
    points: Mapped[int] = mapped_column(default=1000)  # 0, 1000 or 2000
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    quiz: Mapped[Quiz] = relationship(back_populates="questions")


class QuizTag(Base):
    __tablename__ = "quiz_tags"

    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Game(Base):
    """One hosted game; rows of players and answers are written when it ends."""

    __tablename__ = "quiz_games"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), index=True
    )
    host_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    pin: Mapped[str] = mapped_column(String(6))
    status: Mapped[str] = mapped_column(String(16), default="lobby")  # lobby | ended | abandoned
    quiz_title: Mapped[str] = mapped_column(String(200))
    question_count: Mapped[int] = mapped_column(default=0)
    player_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class GamePlayer(Base):
    __tablename__ = "quiz_game_players"
    __table_args__ = (UniqueConstraint("game_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    game_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_games.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]  # the player's number inside the game
    nickname: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    score: Mapped[int] = mapped_column(default=0)
    rank: Mapped[int] = mapped_column(default=0)
    correct_count: Mapped[int] = mapped_column(default=0)
    kicked: Mapped[bool] = mapped_column(default=False)


class GameAnswer(Base):
    """One player's answer to one question of a game (or none: answered=False)."""

    __tablename__ = "quiz_game_answers"
    __table_args__ = (
        UniqueConstraint("game_id", "player_number", "question_index"),
        Index("ix_quiz_game_answers_game_question", "game_id", "question_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    game_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("quiz_games.id", ondelete="CASCADE"))
    player_number: Mapped[int]
    question_index: Mapped[int]
    question_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    answer: Mapped[Any] = mapped_column(JSON, nullable=True, default=None)
    outcome: Mapped[str] = mapped_column(String(8))  # correct | wrong | poll | none
    points: Mapped[int] = mapped_column(default=0)
    bonus: Mapped[int] = mapped_column(default=0)
    elapsed_ms: Mapped[int | None] = mapped_column(default=None)


class QuizComment(TimestampMixin, Base):
    """A comment on a public quiz; replies point at a top-level comment (one level)."""

    __tablename__ = "quiz_comments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("quiz_comments.id", ondelete="CASCADE"), default=None
    )
    body: Mapped[str] = mapped_column(String(2000))
    is_deleted: Mapped[bool] = mapped_column(default=False)
    edited: Mapped[bool] = mapped_column(default=False)


class QuizLike(Base):
    __tablename__ = "quiz_likes"

    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuizReport(Base):
    """An abuse report on a quiz or one of its comments, waiting for an admin."""

    __tablename__ = "quiz_reports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    quiz_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quiz_quizzes.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("quiz_comments.id", ondelete="CASCADE"), default=None
    )
    reporter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(String(32), default=None)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
