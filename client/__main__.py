"""``python -m client``: the same command line as the ``mdl`` console script."""

from client.cli import mdl

if __name__ == "__main__":
    mdl()
