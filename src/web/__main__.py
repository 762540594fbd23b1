from src.web.server import main

main()
