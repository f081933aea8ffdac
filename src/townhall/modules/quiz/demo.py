"""Demo data: a public quiz owned by Alice with one question of every type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from townhall.core.auth.models import User
from townhall.core.db import new_id
from townhall.modules.quiz.models import Quiz
from townhall.modules.quiz.schemas import OptionIn, QuestionIn, QuizIn
from townhall.modules.quiz.service import apply_body

if TYPE_CHECKING:
    from townhall.core.platform import Platform

DEMO_TITLE = "Townhall warm-up"


def demo_quiz() -> QuizIn:
    return QuizIn(
        title=DEMO_TITLE,
        description="Seven quick questions, one of each type. Host it and play from your phone.",
        is_public=True,
        tags=["demo", "general"],
        questions=[
            QuestionIn(
                type="single",
                text="Which planet is known as the Red Planet?",
                time_limit=20,
                options=[
                    OptionIn(text="Venus"),
                    OptionIn(text="Mars", correct=True),
                    OptionIn(text="Jupiter"),
                    OptionIn(text="Mercury"),
                ],
            ),
            QuestionIn(
                type="true_false",
                text="Octopuses have three hearts.",
                time_limit=10,
                options=[OptionIn(text="True", correct=True), OptionIn(text="False")],
            ),
            QuestionIn(
                type="multiple",
                text="Which of these are programming languages?",
                time_limit=20,
                points=2000,
                options=[
                    OptionIn(text="Python", correct=True),
                    OptionIn(text="Cobra"),
                    OptionIn(text="Rust", correct=True),
                    OptionIn(text="Iron"),
                ],
            ),
            QuestionIn(
                type="type_answer",
                text="What is the chemical symbol of gold?",
                time_limit=20,
                accepted=["Au"],
            ),
            QuestionIn(
                type="slider",
                text="In which year did the first person walk on the Moon?",
                time_limit=20,
                min=1950,
                max=2000,
                step=1,
                correct=1969,
                tolerance=1,
            ),
            QuestionIn(
                type="ordering",
                text="Put these in order, smallest first.",
                time_limit=30,
                items=["Atom", "Cell", "Mouse", "Elephant"],
            ),
            QuestionIn(
                type="poll",
                text="How did you like this quiz?",
                time_limit=15,
                points=0,
                options=[OptionIn(text="Loved it"), OptionIn(text="Fine"), OptionIn(text="Meh")],
            ),
        ],
    )


async def load_demo(platform: Platform, session: AsyncSession, users: dict[str, User]) -> None:
    """Create the demo quiz for alice@example.com unless it exists."""
    alice = users.get("alice@example.com")
    if alice is None:
        return
    found = await session.scalar(
        select(Quiz.id).where(Quiz.owner_id == alice.id, Quiz.title == DEMO_TITLE)
    )
    if found is not None:
        return
    quiz = Quiz(id=new_id(), owner_id=alice.id, questions=[], tags=[])
    apply_body(quiz, demo_quiz())
    session.add(quiz)
    await session.flush()
