"""Exit status of the console script: 0 when every input succeeded (or was skipped because its
outputs exist), 1 when any failed or the run could not start, 2 for a bad command line, 130
when interrupted."""

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
