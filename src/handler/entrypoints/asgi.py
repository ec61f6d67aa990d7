"""The ASGI app for uvicorn: the streamed route on Lambda (Web Adapter) and `make dev`."""

from handler.wiring import create_app

app = create_app()
