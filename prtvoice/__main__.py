from prtvoice.cli import main

main()
