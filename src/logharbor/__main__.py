from logharbor.cli import main

main()
