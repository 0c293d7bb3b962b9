"""Helpers for the two position APIs: unique entity names, publishing, and a
Watch call that is known to be registered before anyone publishes."""

import contextlib
import uuid

from dataport.position.v1 import position_pb2 as v1

from interop import RPC_TIMEOUT


def new_entity(prefix):
    """A name no other test uses, so tests sharing a server stay apart."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def vec(x, y, z):
    return v1.Vector3(x=x, y=y, z=z)


def publish(stub, entity, x, y, z):
    """Publishes and returns the EntityPosition the server recorded."""
    return stub.Publish(v1.PublishRequest(entity=entity, position=vec(x, y, z)), timeout=RPC_TIMEOUT).position


def get(stub, entity):
    return stub.Get(v1.GetRequest(entity=entity), timeout=RPC_TIMEOUT).position


@contextlib.contextmanager
def watching(stub, entities, timeout=RPC_TIMEOUT):
    """A Watch call whose watcher is registered: the server registers it
    before it sends the response headers, so once initial_metadata() returns,
    every later publish reaches it. Cancelled on the way out."""
    call = stub.Watch(v1.WatchRequest(entities=entities), timeout=timeout)
    try:
        call.initial_metadata()
        yield call
    finally:
        call.cancel()
