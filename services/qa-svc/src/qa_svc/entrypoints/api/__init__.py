"""One router module per resource."""

from fastapi import APIRouter

from qa_svc.entrypoints.api import alerts, reports, reviews, samples, sanctions, scoring

ROUTERS: list[APIRouter] = [
    alerts.router,
    sanctions.router,
    samples.router,
    scoring.router,  # QA-SCORE
    reviews.router,  # QA-SCORE
    reports.router,  # QA-SAMPLE, QA-SCORE, QA-REALTIME
]
