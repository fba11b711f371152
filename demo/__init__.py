"""The demo target: a small service that leaks in the classic ways (see ``target``)."""
