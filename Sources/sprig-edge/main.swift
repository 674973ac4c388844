// Device CLI; see docs/cli.md.
