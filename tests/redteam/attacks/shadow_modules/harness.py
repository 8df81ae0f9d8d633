# Attack: a module named like one the harness or Python loads (harness), to run code before or instead of it.
import os

print("SHADOW EXECUTED harness")
os._exit(3)
