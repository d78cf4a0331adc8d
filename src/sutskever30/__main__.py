from sutskever30.cli import main

raise SystemExit(main())
