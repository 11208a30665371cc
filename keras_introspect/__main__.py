"""`python -m keras_introspect` runs the command line."""

import sys

from keras_introspect.cli import main

sys.exit(main())
