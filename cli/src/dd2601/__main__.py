from dd2601.main import main

raise SystemExit(main())
