"""A FastAPI app for tests/integration/asgi.sh: a typed JSON body, path and
query parameters, a form with an uploaded file, a StreamingResponse, a
background task, an HTTPException, and a startup that can fail
(ASGI_TEST_LIFESPAN=fail: the traceback must reach corral's log)."""
import asyncio
import os

from fastapi import BackgroundTasks, FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

LOG = os.environ.get("ASGI_TEST_LOG")
app = FastAPI()


def record(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


@app.on_event("startup")
async def startup():
    if os.environ.get("ASGI_TEST_LIFESPAN") == "fail":
        raise RuntimeError("FastAPI startup failed on purpose")
    record("fastapi startup")


@app.on_event("shutdown")
async def shutdown():
    record("fastapi shutdown")


class Item(BaseModel):
    name: str
    price: float
    tags: list = []


@app.post("/items/{item_id}")
async def create_item(item_id: int, item: Item, q: str = ""):
    return {"id": item_id, "name": item.name, "price": item.price, "tags": item.tags, "q": q}


@app.get("/items/{item_id}")
async def read_item(item_id: int):
    if item_id == 0:
        raise HTTPException(status_code=404, detail="no item 0")
    return {"id": item_id}


@app.post("/upload")
async def upload(note: str = Form(...), file: UploadFile = File(...)):
    data = await file.read()
    return {"note": note, "filename": file.filename, "size": len(data)}


@app.get("/stream")
async def stream(n: int = 5):
    async def gen():
        for i in range(n):
            yield b"part %d\n" % i
            await asyncio.sleep(0.001)
    return StreamingResponse(gen(), media_type="text/plain")


@app.get("/background")
async def background(tasks: BackgroundTasks, tag: str = "x"):
    tasks.add_task(record, "fastapi background %s" % tag)
    return {"queued": tag}


@app.get("/sleep")
async def sleep(ms: int = 10):
    await asyncio.sleep(ms / 1000)
    return {"slept": ms}
