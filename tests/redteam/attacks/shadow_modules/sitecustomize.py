# Attack: a module named like one the harness or Python loads (sitecustomize), to run code before or instead of it.
import os

print("SHADOW EXECUTED sitecustomize")
os._exit(3)
