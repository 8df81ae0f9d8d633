# Attack: end the process with status 0 at import, skipping the harness's exception handling.
import os

os._exit(0)
