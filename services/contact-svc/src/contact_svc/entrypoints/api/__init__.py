"""One router module per resource."""

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
