from dsd.cli import main

raise SystemExit(main())
