"""The ASGI app for uvicorn: the streamed route on Lambda (Web Adapter) and `make dev`."""

from handler.api.app import create_app

app = create_app()
