from src.web.cli import main

main()
