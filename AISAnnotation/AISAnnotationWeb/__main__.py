import sys

from AISAnnotationWeb.app import main

sys.exit(main())
