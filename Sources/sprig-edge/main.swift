// sprig-edge: the device CLI. SprigRuntime plus a thin libc layer.
// See docs/cli.md. Exit status: 0 success, 1 bad input, 2 bad usage.
//
// Host entry point. Embedded builds leave this file out and enter through
// `sprig_edge_entry` (EmbeddedEntry.swift), called from Targets/<triple>/start.c.

c_exit(edgeMain(arguments(CommandLine.argc, CommandLine.unsafeArgv)))
