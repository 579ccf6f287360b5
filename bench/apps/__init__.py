"""The bench service written without kit: FastAPI (plain and tuned), Starlette and raw ASGI."""
