from ftprep.cli import main

main()
