"""The worker's OpenAI-compatible HTTP server (FastAPI on uvicorn) and metrics."""
