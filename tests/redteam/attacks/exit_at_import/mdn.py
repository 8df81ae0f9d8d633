# Attack: exit cleanly (status 0) while being imported, as if everything had succeeded.
import sys

sys.exit(0)
