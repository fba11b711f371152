"""Reading a process from outside: the probe's client, the pool of connections the live view
uses, finding processes and their probes, the py-spy fallback and starting a probe in a
running process.  No Textual here."""
