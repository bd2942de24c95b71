"""One module per resource namespace, each with its blocking and its asyncio class."""
