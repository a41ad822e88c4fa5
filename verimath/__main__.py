from verimath.cli import main

raise SystemExit(main())
