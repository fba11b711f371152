"""What tasktop prints and writes: the dump's text and JSON documents, the folded and pprof
profiles, ``diff``, ``check``, exported files, and the rules every view shares (the user's own
frame of a stack, durations, sizes, source lines).  No Textual here."""
