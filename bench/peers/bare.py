"""The framework ceiling: bare FastAPI answering one small JSON document.

Run by bench/run.py with the same uvicorn settings as `authsvc serve` (uvloop, httptools,
one worker, no access log, no server header).
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
