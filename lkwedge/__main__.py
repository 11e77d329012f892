from lkwedge.cli import main

main()
