// The executable is filled in by the subcommands.
print("tokenmeter")
