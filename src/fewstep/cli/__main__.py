from fewstep.cli import main

main()
