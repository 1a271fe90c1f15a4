"""`python -m cli.lab …`: the lab's commands without the rest of pkctl."""

from cli.lab.commands import command

if __name__ == "__main__":
    command.main(prog_name="pkctl lab")
