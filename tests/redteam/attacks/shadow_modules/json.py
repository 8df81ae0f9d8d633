# Attack: a module named like one the harness or Python loads (json), to run code before or instead of it.
import os

print("SHADOW EXECUTED json")
os._exit(3)
