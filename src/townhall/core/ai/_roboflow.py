"""Roboflow's hosted inference API: POST a base64 image, get predictions back."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from townhall.core.ai._http import post_with_retries
from townhall.core.ai._types import AIInvalidOutput, Box, Detection
from townhall.core.config import Settings


class _Prediction(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    x: float
    y: float
    width: float
    height: float
    confidence: float
    label: str = Field(alias="class")


class _ImageInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    width: float | None = None
    height: float | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    predictions: list[_Prediction]
    image: _ImageInfo | None = None


class Roboflow:
    """Object detection through detect.roboflow.com (or a self-hosted inference server)."""

    name = "roboflow"

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._base = settings.roboflow_base_url.rstrip("/")
        key = settings.roboflow_api_key
        self._key = key.get_secret_value() if key is not None else ""
        self.model = settings.roboflow_model
        self._max_retries = settings.ai_max_retries
        self._backoff = settings.ai_retry_backoff_seconds

    async def detect(
        self, image: bytes, *, model: str | None
    ) -> tuple[list[Detection], dict[str, Any], str]:
        """Detections (boxes converted from centre to top-left), image details, model."""
        used_model = model or self.model
        response = await post_with_retries(
            self._client,
            f"{self._base}/{used_model}",
            provider=self.name,
            max_retries=self._max_retries,
            backoff=self._backoff,
            secrets=[self._key],
            params={"api_key": self._key},
            content=base64.b64encode(image),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            answer = _Answer.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise AIInvalidOutput(
                f"roboflow answered with an unexpected body: {str(exc)[:200]}", provider=self.name
            ) from exc
        detections = [
            Detection(
                label=p.label,
                confidence=p.confidence,
                box=Box(x=p.x - p.width / 2, y=p.y - p.height / 2, width=p.width, height=p.height),
            )
            for p in answer.predictions
        ]
        details: dict[str, Any] = {}
        if answer.image is not None:
            details = {"width": answer.image.width, "height": answer.image.height}
        return detections, details, used_model
