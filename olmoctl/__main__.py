from olmoctl.cli.main import main

main()
