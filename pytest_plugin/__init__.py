"""The pytest plugin that fails tests which leave asyncio tasks or threads behind (``tasktop``
in pytest's ``pytest11`` entry points; see ``plugin``)."""
