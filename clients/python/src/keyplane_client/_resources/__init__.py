"""One module per resource namespace, each with its blocking and its asyncio class.

The two classes repeat each other's signatures on purpose: a method's parameters are its
documentation and its type check, and ``async def`` cannot be derived from ``def`` without
losing both. What a method sends is written once, in the module's functions that build its
:class:`~keyplane_client._types.Call`; the clients send it (retries and errors included).
"""
