"""`pkctl lab`: the one-machine lab (see lab.py for the layout and
guarantees, net.py for the network, plan.py for the addresses)."""

from cli.lab.commands import command

__all__ = ["command"]
