"""quizzes and games

Revision ID: 0001_quiz
Revises:
Create Date: 2026-11-22 04:47:55.561472
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import townhall.core.db

revision: str = "0001_quiz"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("quiz",)
depends_on: str | Sequence[str] | None = "0001_core"


def upgrade() -> None:
    op.create_table(
        "quiz_quizzes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), nullable=False),
        sa.Column("cover_image_key", sa.String(length=500), nullable=True),
        sa.Column("play_count", sa.Integer(), nullable=False),
        sa.Column("like_count", sa.Integer(), nullable=False),
        sa.Column("created_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_quiz_quizzes_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_quizzes")),
    )
    with op.batch_alter_table("quiz_quizzes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_quizzes_is_public"), ["is_public"], unique=False)
        batch_op.create_index(batch_op.f("ix_quiz_quizzes_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "quiz_comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("created_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_quiz_comments_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["quiz_comments.id"],
            name=op.f("fk_quiz_comments_parent_id_quiz_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_comments_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_comments")),
    )
    with op.batch_alter_table("quiz_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_comments_quiz_id"), ["quiz_id"], unique=False)

    op.create_table(
        "quiz_games",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("host_id", sa.Uuid(), nullable=False),
        sa.Column("pin", sa.String(length=6), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quiz_title", sa.String(length=200), nullable=False),
        sa.Column("question_count", sa.Integer(), nullable=False),
        sa.Column("player_count", sa.Integer(), nullable=False),
        sa.Column("created_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", townhall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["users.id"], name=op.f("fk_quiz_games_host_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_games_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_games")),
    )
    with op.batch_alter_table("quiz_games", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_games_host_id"), ["host_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quiz_games_quiz_id"), ["quiz_id"], unique=False)

    op.create_table(
        "quiz_likes",
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_likes_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_quiz_likes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("quiz_id", "user_id", name=op.f("pk_quiz_likes")),
    )
    op.create_table(
        "quiz_questions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("image_key", sa.String(length=500), nullable=True),
        sa.Column("time_limit", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_questions_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_questions")),
    )
    with op.batch_alter_table("quiz_questions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_questions_quiz_id"), ["quiz_id"], unique=False)

    op.create_table(
        "quiz_tags",
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_tags_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("quiz_id", "tag", name=op.f("pk_quiz_tags")),
    )
    with op.batch_alter_table("quiz_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "quiz_game_answers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.Uuid(), nullable=False),
        sa.Column("player_number", sa.Integer(), nullable=False),
        sa.Column("question_index", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("bonus", sa.Integer(), nullable=False),
        sa.Column("elapsed_ms", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["quiz_games.id"],
            name=op.f("fk_quiz_game_answers_game_id_quiz_games"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_game_answers")),
        sa.UniqueConstraint(
            "game_id", "player_number", "question_index", name=op.f("uq_quiz_game_answers_game_id")
        ),
    )
    with op.batch_alter_table("quiz_game_answers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_quiz_game_answers_game_question", ["game_id", "question_index"], unique=False
        )

    op.create_table(
        "quiz_game_players",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("game_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("nickname", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("correct_count", sa.Integer(), nullable=False),
        sa.Column("kicked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["game_id"],
            ["quiz_games.id"],
            name=op.f("fk_quiz_game_players_game_id_quiz_games"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_quiz_game_players_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_game_players")),
        sa.UniqueConstraint("game_id", "number", name=op.f("uq_quiz_game_players_game_id")),
    )
    with op.batch_alter_table("quiz_game_players", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_game_players_game_id"), ["game_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quiz_game_players_user_id"), ["user_id"], unique=False)

    op.create_table(
        "quiz_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quiz_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", townhall.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", townhall.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["quiz_comments.id"],
            name=op.f("fk_quiz_reports_comment_id_quiz_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"],
            ["quiz_quizzes.id"],
            name=op.f("fk_quiz_reports_quiz_id_quiz_quizzes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"],
            ["users.id"],
            name=op.f("fk_quiz_reports_reporter_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"],
            ["users.id"],
            name=op.f("fk_quiz_reports_resolved_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_reports")),
    )
    with op.batch_alter_table("quiz_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quiz_reports_quiz_id"), ["quiz_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quiz_reports_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quiz_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_reports_status"))
        batch_op.drop_index(batch_op.f("ix_quiz_reports_quiz_id"))

    op.drop_table("quiz_reports")
    with op.batch_alter_table("quiz_game_players", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_game_players_user_id"))
        batch_op.drop_index(batch_op.f("ix_quiz_game_players_game_id"))

    op.drop_table("quiz_game_players")
    with op.batch_alter_table("quiz_game_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_quiz_game_answers_game_question")

    op.drop_table("quiz_game_answers")
    with op.batch_alter_table("quiz_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_tags_tag"))

    op.drop_table("quiz_tags")
    with op.batch_alter_table("quiz_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_questions_quiz_id"))

    op.drop_table("quiz_questions")
    op.drop_table("quiz_likes")
    with op.batch_alter_table("quiz_games", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_games_quiz_id"))
        batch_op.drop_index(batch_op.f("ix_quiz_games_host_id"))

    op.drop_table("quiz_games")
    with op.batch_alter_table("quiz_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_comments_quiz_id"))

    op.drop_table("quiz_comments")
    with op.batch_alter_table("quiz_quizzes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quiz_quizzes_owner_id"))
        batch_op.drop_index(batch_op.f("ix_quiz_quizzes_is_public"))

    op.drop_table("quiz_quizzes")
