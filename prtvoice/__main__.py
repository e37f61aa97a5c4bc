try:
    from prtvoice.launch import main
except KeyboardInterrupt:  # Ctrl-C while still importing: stop quietly, as main() would
    raise SystemExit(130) from None

main()
