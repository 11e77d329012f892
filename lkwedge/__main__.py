from lkwedge.cli import run

run()
