"""``mnistctl serve``: an ASGI app (Starlette, run by uvicorn) for predictions over HTTP and the draw-a-digit page.

One concern a module: ``config`` (settings, handed to worker processes), ``models`` (refs re-resolved, predictors
cached and locked), ``errors`` (failures as HTTP statuses), ``limits`` (request size), ``multipart`` (the images
of a form), ``metrics`` (Prometheus), ``openapi`` (the API's description), ``app`` (routes and the guard every
request passes), ``runner`` (uvicorn). The server reads the registry and never writes it, and runs LiteRT only:
TensorFlow is never imported.
"""
